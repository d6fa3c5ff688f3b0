"""Grid training the base MusicGen models (text-to-music, 32 kHz) at three scales, as upstream's.

Replace ``dset`` by your music dataset (``config/dset/audio/<name>.yaml``, see docs/MUSICGEN_TRAINING.md). The
configs keep upstream's global batch (192 items over 32 GPUs); with fewer GPUs, ``optim.grad_accum_steps`` keeps
that global batch.
"""

from audiocraft.environment import AudioCraftEnvironment

from ._explorers import LMExplorer


@LMExplorer
def explorer(launcher):
    partitions = AudioCraftEnvironment().get_slurm_partitions(["team", "global"])
    launcher.slurm_(gpus=32, partition=partitions)
    launcher.bind_(solver="musicgen/musicgen_base_32khz")
    launcher.bind_(dset="audio/example")  # replace by the desired music dataset

    fsdp = {"autocast": False, "fsdp.use": True}
    medium = {"model/lm/model_scale": "medium"}
    large = {"model/lm/model_scale": "large"}
    cfg_low = {"classifier_free_guidance.training_dropout": 0.2}
    wd_low = {"conditioners.description.t5.word_dropout": 0.2}
    adam = {"optim.optimizer": "adamw", "optim.lr": 1e-4}

    launcher.bind_(fsdp)

    launcher.slurm_(gpus=32).bind_(label="32gpus")
    with launcher.job_array():
        sub = launcher.bind()
        sub()

    launcher.slurm_(gpus=64).bind_(label="64gpus")
    with launcher.job_array():
        sub = launcher.bind()
        sub(medium, adam)

    launcher.slurm_(gpus=96).bind_(label="96gpus")
    with launcher.job_array():
        sub = launcher.bind()
        sub(large, cfg_low, wd_low, adam, {"optim.max_norm": 3})
