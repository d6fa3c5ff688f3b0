"""Grid training the AudioGen's EnCodec on monophonic sounds at 16 kHz (total stride 320, 50 Hz frames).

Replace `dset` by your dataset (`config/dset/audio/<name>.yaml`); `audio/example` only checks that the
pipeline runs.
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import CompressionExplorer


@CompressionExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=8, partition=partitions)
    launcher.bind_(solver="compression/encodec_audiogen_16khz")
    launcher.bind_(dset="audio/example")  # replace by the desired dataset
    launcher()
