"""Grid training the MusicGen's EnCodec on monophonic music at 32 kHz (total stride 640, 50 Hz frames).

Replace `dset` by your dataset (`config/dset/audio/<name>.yaml`); `audio/example` only checks that the
pipeline runs.
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import CompressionExplorer


@CompressionExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=8, partition=partitions)
    launcher.bind_(solver="compression/encodec_musicgen_32khz")
    launcher.bind_(dset="audio/example")  # replace by the desired dataset
    launcher()
    # With ViSQOL at the evaluate stage: uncomment and point metrics.visqol.bin to your ViSQOL install.
    # launcher({"metrics.visqol.bin": "/path/to/visqol", "label": "visqol", "evaluate.metrics.visqol": True})
