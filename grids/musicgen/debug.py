"""Minimal MusicGen grid, for debugging and for trying Dora and SLURM on a small (2-CPU) node.

``dora grid musicgen.debug --dry_run --init`` lists the XPs; ``dora run -f SIG`` runs one locally;
``dora grid musicgen.debug`` schedules them through Dora's submitit launcher. ``audiogen.debug`` is the same grid.
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import LMExplorer


def debug_grid(launcher, solver: str) -> None:
    """The debug XPs of an LM solver config: as is, with the delay pattern, and in two accumulated micro-batches."""
    partitions = AudioCraftEnvironment().get_slurm_partitions(["global"]) or "debug"
    # CPU-only jobs sized for a 2-CPU node: no GPU, one CPU per task, a few GB, 30 minutes.
    launcher.slurm_(gpus=0, cpus_per_task=1, mem_per_gpu=4, time=30, partition=partitions)
    launcher.bind_(solver=solver)

    with launcher.job_array():
        launcher()  # the debug config as is
        launcher({"codebooks_pattern.modeling": "delay"})  # the delay interleaving of the released models
        launcher({"optim.grad_accum_steps": 2, "dataset.batch_size": 4})  # same global batch in 2 micro-batches


@LMExplorer
def explorer(launcher):
    debug_grid(launcher, "musicgen/debug")
