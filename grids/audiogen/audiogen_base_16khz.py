"""Grid training the base AudioGen model (text-to-sound, 16 kHz), as upstream's.

Replace ``dset`` by your sound dataset (``config/dset/audio/<name>.yaml`` with SoundDataset sidecars).
"""

from audiocraft.environment import AudioCraftEnvironment

from ..musicgen._explorers import LMExplorer


@LMExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=64, partition=partitions)
    launcher.bind_(solver="audiogen/audiogen_base_16khz")
    launcher.bind_(dset="audio/example")  # replace by the desired sound dataset

    fsdp = {"autocast": False, "fsdp.use": True}
    medium = {"model/lm/model_scale": "medium"}

    launcher.bind_(fsdp)
    launcher(medium)
