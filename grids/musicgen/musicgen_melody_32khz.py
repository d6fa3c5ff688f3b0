"""Grid training the melody MusicGen model (text + chroma, 32 kHz), as upstream's.

Replace ``dset`` by your music dataset; the chroma conditioner's stem separation reads demucs from a local folder
or the Hugging Face cache (extra ``audiocraft-conditioners[demucs]``).
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import LMExplorer


@LMExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=32, partition=partitions)
    launcher.bind_(solver="musicgen/musicgen_melody_32khz")
    launcher.bind_(dset="audio/example")  # replace by the desired music dataset

    fsdp = {"autocast": False, "fsdp.use": True}
    medium = {"model/lm/model_scale": "medium"}

    launcher.bind_(fsdp)
    launcher.slurm_(gpus=32).bind_(label="32gpus")
    with launcher.job_array():
        launcher(medium)
