"""Grid training the base causal EnCodec on monophonic audio at 24 kHz.

Replace `dset` by your dataset (`config/dset/audio/<name>.yaml`); `audio/example` only checks that the
pipeline runs.
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import CompressionExplorer


@CompressionExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=8, partition=partitions)
    launcher.bind_(solver="compression/encodec_base_24khz")
    launcher.bind_(dset="audio/example")  # replace by the desired dataset
    launcher()
