"""Share exported models on the Hugging Face hub: one commit with the package files and the model card.

Layer: audiocraft-models, models (extra ``[hub]``: huggingface_hub, imported inside the functions). The repo gets
the files of upstream's hub layout, which the loaders read back from a repo id: ``compression_state_dict.bin`` for
EnCodec (``CompressionModel.get_pretrained(repo_id)``), plus ``state_dict.bin`` for a language model
(``MusicGen.get_pretrained(repo_id)`` / ``AudioGen.get_pretrained(repo_id)``), and ``README.md`` (the card of
`audiocraft.models.model_card`). The endpoint is huggingface_hub's (``HF_ENDPOINT``), the token ``token`` or the
one huggingface_hub finds (``HF_TOKEN``, ``hf auth login``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["HubPushError", "check_repo_id", "push_files_to_hub"]

# owner/name as the hub accepts it: letters, digits, '-', '_', '.', no leading/trailing '-' or '.', at most 96 chars.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"{_NAME}/{_NAME}")


class HubPushError(RuntimeError):
    """The push to the hub failed; the message names the repo and what to do."""


def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is a hub model repo id (``owner/name``).

    Raises:
        ValueError: naming the value and the expected form.
    """
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ValueError(
            f"{repo_id!r} is not a Hugging Face repo id: expected owner/name (letters, digits, '-', '_', '.'; "
            "e.g. my-user/my-encodec)"
        )
    return repo_id


def _hub() -> Any:
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError as exc:
        raise ImportError(
            "pushing to the Hugging Face hub needs huggingface_hub: pip install 'audiocraft-models[hub]' "
            "(or 'audiocraft[hub]')"
        ) from exc


def push_files_to_hub(
    files: Mapping[str, Path | bytes],
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Create the model repo if needed and commit ``files`` to it in one commit.

    Args:
        files: ``{path in the repo: local file or content}``.
        repo_id: ``owner/name``.
        private: create the repo private (an existing repo keeps its visibility).
        revision: branch to commit to (created from the default branch if missing); None: ``main``.
        commit_message: the commit's summary.
        token: hub token (default: huggingface_hub's, from ``HF_TOKEN`` or the saved login).
        endpoint: the hub's URL (default: huggingface_hub's, ``HF_ENDPOINT`` or https://huggingface.co).

    Returns:
        The commit's URL.

    Raises:
        ImportError: huggingface_hub is not installed (names the extra).
        HubPushError: the hub refused (no token, no write access, ...), naming the repo.
    """
    check_repo_id(repo_id)
    hub = _hub()
    token = token or hub.get_token()
    if not token:
        raise HubPushError(
            f"pushing to {repo_id}: no Hugging Face token (pass --token, set HF_TOKEN, or run `hf auth login`)"
        )
    api = hub.HfApi(endpoint=endpoint, token=token, library_name="audiocraft-models")
    operations = [hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=src) for name, src in files.items()]
    try:
        api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload {', '.join(sorted(files))} with audiocraft-export",
            revision=revision,
        )
    except Exception as exc:  # HTTP errors, and connection errors of huggingface_hub's HTTP client
        raise HubPushError(
            f"pushing to the Hugging Face hub repo {repo_id} ({api.endpoint}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    return str(info.commit_url)
