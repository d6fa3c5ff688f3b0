"""Upstream's path of the switchable ``torch.autocast`` wrapper, `TorchAutocast` (audiocraft-core, training layer).

Solvers wrap their forward passes in ``with self.autocast:``, and the ``autocast`` / ``autocast_dtype`` config keys
decide whether it does anything. The class is owned by audiocraft-conditioners (its frozen encoders run under it);
this module re-exports it so that ``from audiocraft.utils.autocast import TorchAutocast`` keeps working.
"""

from audiocraft.conditioners import TorchAutocast

__all__ = ["TorchAutocast"]
