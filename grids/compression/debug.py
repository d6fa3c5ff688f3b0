"""Minimal compression grid, for debugging and for trying Dora and SLURM on a small (2-CPU) node.

``dora grid compression.debug --dry_run --init`` lists the XPs; ``dora run -f SIG`` runs one locally;
``dora grid compression.debug`` schedules them through Dora's submitit launcher. Overrides given to
``launcher(...)`` create extra XPs.
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import CompressionExplorer


@CompressionExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["global"]) or "debug"
    # CPU-only jobs sized for a 2-CPU node: no GPU, one CPU per task, a few GB, 30 minutes.
    launcher.slurm_(gpus=0, cpus_per_task=1, mem_per_gpu=4, time=30, partition=partitions)
    launcher.bind_(solver="compression/debug")

    with launcher.job_array():
        # the base debug XP: solver=compression/debug as is
        launcher()
        # overriding parameters in the grid makes further XPs
        launcher({"rvq.bins": 2048, "rvq.n_q": 4})
