"""Loading a demucs source-separation model without downloading it (layer: audiocraft-conditioners, private).

Needs the ``[demucs]`` extra. Upstream calls ``demucs.pretrained.get_model('htdemucs')``, which downloads the model on
first use. Here a model is one of:

* a demucs model name (``htdemucs``, ``someuser/htdemucs_ft``) whose Hugging Face repository (demucs' own layout:
  ``<name>.yaml`` listing the models of the bag, one ``<signature>.safetensors`` per model) is already in the local
  Hugging Face cache;
* a local directory in that layout (its one ``.yaml`` file names the bag);
* a local ``.safetensors`` file holding one demucs model (class and arguments in its metadata, as demucs writes
  them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._hub import resolve_pretrained_dir

_DEMUCS_INSTALL = "pip install 'audiocraft-conditioners[demucs]'"


def _load_bag(folder: Path, name: str | None) -> Any:
    import yaml
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    if name is None:
        bags = sorted(folder.glob("*.yaml"))
        if len(bags) != 1:
            raise FileNotFoundError(
                f"demucs model folder {folder} must hold exactly one <name>.yaml, found {[b.name for b in bags]}"
            )
        bag_file = bags[0]
    else:
        bag_file = folder / f"{name}.yaml"
        if not bag_file.is_file():
            raise FileNotFoundError(f"demucs bag definition {bag_file} not found")
    bag = yaml.safe_load(bag_file.read_text())
    models = []
    for sig in bag["models"]:
        weights = folder / f"{sig}.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"demucs model weights {weights} (listed in {bag_file.name}) not found")
        models.append(load_safetensors_model(weights))
    return BagOfModels(models, bag.get("weights"), bag.get("segment"))


def load_demucs(model: str) -> Any:
    """The demucs model (a ``BagOfModels`` or a single model) named or stored at ``model``, in eval mode.

    Raises:
        ImportError: demucs is not installed (names the extra).
        FileNotFoundError: a missing path, or a name that is not in the local Hugging Face cache.
    """
    try:
        import demucs.hf
    except ImportError as exc:
        raise ImportError(f"stem separation needs demucs: {_DEMUCS_INSTALL}") from exc
    path = Path(model).expanduser()
    if path.is_file():
        return demucs.hf.load_safetensors_model(path).eval()
    if path.is_dir():
        return _load_bag(path, None).eval()
    namespace, _, name = model.rpartition("/")
    if name != model and namespace.count("/") > 0 or model.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"demucs model not found: {model}")
    repo_id = f"{namespace or demucs.hf.DEFAULT_NAMESPACE}/{demucs.hf.hf_repo_name(name)}"
    return _load_bag(resolve_pretrained_dir(repo_id), name).eval()
