"""Fine-tune a released MusicGen on your own music on ONE GPU (the recipe of docs/MUSICGEN_TRAINING.md).

``continue_from=//pretrained/facebook/musicgen-small`` reads the released weights offline from the local Hugging Face
cache (``HF_HUB_OFFLINE=1``) or from ``$AUDIOCRAFT_PRETRAINED_DIR``; the T5 text encoder comes from the same cache.
Upstream's global batch of 192 is reached with 8 items per step and 24 accumulation steps; the learning rate is a
fine-tuning one (adamw, 1e-5, short warmup). Replace ``dset`` by your dataset.
"""

from ._explorers import LMExplorer


@LMExplorer
def explorer(launcher):
    launcher.slurm_(gpus=1)
    launcher.bind_(
        solver="musicgen/musicgen_base_32khz",
        dset="audio/example",
        continue_from="//pretrained/facebook/musicgen-small",
    )
    launcher.bind_(
        {
            "model/lm/model_scale": "small",
            "dataset.batch_size": 8,
            "optim.grad_accum_steps": 24,
            "dataset.segment_duration": 30,
            "dataset.num_workers": 8,
            "optim.optimizer": "adamw",
            "optim.lr": 1e-5,
            "optim.epochs": 20,
            "optim.updates_per_epoch": 500,
            "schedule.lr_scheduler": "cosine",
            "schedule.cosine.warmup": 100,
            "optim.ema.use": False,
            "autocast": True,
            "autocast_dtype": "float16",
        }
    )
    launcher()
