"""Finding a pretrained model on disk, never on the network (layer: audiocraft-conditioners, private).

The T5, CLAP and demucs models of the conditioners are either a local directory or a Hugging Face hub name that must
already be in the local Hugging Face cache (``$HF_HOME`` / ``$HF_HUB_CACHE``); nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

_HUB_INSTALL = "pip install 'audiocraft-conditioners[t5]'"


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def resolve_pretrained_dir(name: str) -> Path:
    """Local directory of a Hugging Face model: ``name`` itself, or its snapshot in the local hub cache.

    Raises:
        ImportError: huggingface_hub (installed with transformers) is missing.
        FileNotFoundError: the directory does not exist, or the hub name is not in the cache (never downloaded).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(name):
        raise FileNotFoundError(f"model directory not found: {name}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ImportError(
            f"finding a Hugging Face model needs huggingface_hub (comes with transformers): {_HUB_INSTALL}"
        ) from exc
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, or an invalid repo id
        raise FileNotFoundError(
            f"{name!r} is neither a local directory nor in the Hugging Face cache, and models are never downloaded "
            f"at run time: fetch it once (e.g. `hf download {name}`) or pass the directory of a saved model"
        ) from exc
