"""An upstream-style grid file: it uses `AudioCraftEnvironment` at class level, as upstream AudioCraft's grids do.

Not a grid of the package: ``test_upstream_grid.py`` copies it into a copy of ``audiocraft.grids`` (as
``compression/environment_calls.py``) and runs ``dora grid compression.environment_calls --dry_run --init``.
"""

from ...environment import AudioCraftEnvironment
from ._explorers import CompressionExplorer


@CompressionExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment.get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=0, partition=partitions)
    print(
        "UPSTREAM-ENV",
        {
            "team": AudioCraftEnvironment.get_team(),
            "cluster": AudioCraftEnvironment.get_cluster(),
            "partitions": partitions,
            "dora_dir": str(AudioCraftEnvironment.get_dora_dir()),
            "reference_dir": str(AudioCraftEnvironment.get_reference_dir()),
            "reference": str(AudioCraftEnvironment.resolve_reference_path("//reference/models/x.th")),
            "mapped": AudioCraftEnvironment.apply_dataset_mappers("/datasets01/music/a.wav"),
        },
    )
    AudioCraftEnvironment.reset()
    launcher.bind_(solver="compression/debug")
    with launcher.job_array():
        launcher()
        launcher({"rvq.n_q": 2})
