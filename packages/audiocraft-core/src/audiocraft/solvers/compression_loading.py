"""The one loader of a frozen compression model for training, checked against the solver's config.

Part of audiocraft-core (task solvers). Language-model solvers tokenize audio with a frozen compression model, and
the compression solver fine-tunes from one; both name it by a training checkpoint file or XP folder, an XP
signature (``//sig/SIG``, or a bare 8-hex signature), a ``//reference/...`` path, or ``//pretrained/NAME`` (an
exported package, a model name such as ``debug_compression_model``, or a hub repo, looked up by
`audiocraft.models.loaders` with ``$AUDIOCRAFT_PRETRAINED_DIR`` exactly as at inference). The model comes back in
eval mode with its parameters frozen, after its sample rate and channels were checked against the config (upstream
asserts the sample rate; a mismatch fails here naming both values).

Where we differ from upstream: an exported package given by path (not only with ``//pretrained/``) is accepted,
and the state dict is loaded strictly through the release loader's ``load_state_dict_strict`` (missing and
unexpected keys named).
"""

from __future__ import annotations

import logging
import typing as tp
from pathlib import Path

import torch

from audiocraft.models import CompressionModel, loaders
from audiocraft.models.export import best_model_state

from ..utils import checkpoint

if tp.TYPE_CHECKING:
    from ..environment import AudioCraftEnvironment

logger = logging.getLogger(__name__)

__all__ = ["check_compression_model", "load_frozen_compression_model"]


def check_compression_model(
    model: CompressionModel,
    sample_rate: int | None,
    channels: int | None,
    source: str,
    expected: str = "the solver config",
) -> None:
    """Raise a ValueError naming both values if ``model`` does not run at ``sample_rate`` with ``channels``.

    Args:
        model: the compression model.
        sample_rate: the expected rate (``cfg.sample_rate``, the rate the data is read at); None: not checked.
        channels: the expected channels (``cfg.channels``); None: not checked.
        source: what the model is, for the message (a path, a name, or how it was built).
        expected: where the expected values come from, for the message.
    """
    problems = []
    if sample_rate is not None and int(model.sample_rate) != int(sample_rate):
        problems.append(f"its sample rate is {model.sample_rate} Hz but {expected} has sample_rate={sample_rate}")
    if channels is not None and int(model.channels) != int(channels):
        problems.append(f"it has {model.channels} channel(s) but {expected} has channels={channels}")
    if problems:
        raise ValueError(
            f"compression model {source}: " + "; ".join(problems) + " (the data is read at the "
            "config's sample_rate and channels: they must match the model's)"
        )


def _default_xps_root(environment: AudioCraftEnvironment | None) -> Path:
    try:
        import dora

        xp = dora.get_xp()
        return Path(xp.dora.dir) / xp.dora.xps
    except RuntimeError:  # not inside an XP
        from ..environment import AudioCraftEnvironment

        env = environment if environment is not None else AudioCraftEnvironment()
        return Path(env.get_dora_dir()) / "xps"


def _from_file(path: Path, device: torch.device | str) -> CompressionModel:
    """A compression model from a training checkpoint or a release package (read once, weights only)."""
    pkg = loaders.load_checkpoint_file(path)
    if pkg.get("exported") or "pretrained" in pkg:
        return (
            loaders.load_compression_model(pkg["pretrained"], device=device)
            if "pretrained" in pkg
            else tp.cast(CompressionModel, loaders.model_from_package("compression", pkg, str(path), device))
        )
    if "xp.cfg" not in pkg:
        raise loaders.CheckpointError(
            f"{path} is neither a compression training checkpoint nor an exported "
            f"package (it has no 'xp.cfg'; keys: {sorted(pkg)})"
        )
    weights = best_model_state(pkg, path)
    cfg = loaders.config_from_package(pkg, str(path))
    model = tp.cast(CompressionModel, loaders.build_model("compression", cfg, device))
    loaders.load_state_dict_strict(model, weights, str(path))
    check_compression_model(
        model, cfg.get("sample_rate"), cfg.get("channels"), str(path), expected="its own training config"
    )
    return model.to(device)


def load_frozen_compression_model(
    source: str | Path,
    device: torch.device | str = "cpu",
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
    xps_root: Path | None = None,
    environment: AudioCraftEnvironment | None = None,
) -> CompressionModel:
    """Load a compression model for training: eval mode, frozen, checked against the solver's rate and channels.

    Args:
        source: training checkpoint file or XP folder, ``//sig/SIG`` (or a bare signature), ``//reference/...``,
            an exported package, or ``//pretrained/NAME`` (see the module docstring).
        device: device of the model.
        sample_rate: the solver's ``sample_rate`` the model must run at (None: not checked).
        channels: the solver's ``channels`` (None: not checked).
        xps_root: the Dora ``xps`` folder for signatures (default: the current XP's, else the environment's).
        environment: resolves ``//reference`` and the default Dora folder (built from the environment variables
            when needed and None).

    Raises:
        FileNotFoundError: nothing found at ``source``.
        audiocraft.models.loaders.CheckpointError: the file cannot be read or does not fit its config.
        ValueError: the model's sample rate or channels differ from ``sample_rate`` / ``channels``.
    """
    text = str(source)
    if text.startswith(loaders.PRETRAINED_PREFIX):
        model = loaders.load_compression_model(text, device=device)
    else:
        if text.startswith("//reference") and environment is None:
            from ..environment import AudioCraftEnvironment

            environment = AudioCraftEnvironment()
        is_signature = text.startswith(checkpoint.SIG_PREFIX) or not Path(text).exists()
        root = xps_root if xps_root is not None or not is_signature else _default_xps_root(environment)
        path = checkpoint.resolve_checkpoint_path(text, use_fsdp=False, xps_root=root, environment=environment)
        if path is None and Path(text).exists():  # e.g. a folder holding an exported compression_state_dict.bin
            path = Path(text)
        if path is None:
            raise FileNotFoundError(
                f"could not find the compression model {text!r}: not a training checkpoint file "
                f"or XP folder, an XP signature (looked up in {root}), a //reference/ path, "
                f"or a {loaders.PRETRAINED_PREFIX}NAME"
            )
        logger.info("Loading compression model from %s", path)
        model = _from_file(path, device) if path.is_file() else loaders.load_compression_model(path, device=device)
    check_compression_model(model, sample_rate, channels, text)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model
