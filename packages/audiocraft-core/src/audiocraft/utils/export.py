"""Upstream's ``audiocraft.utils.export`` path: the release export lives in `audiocraft.models.export`.

Part of audiocraft-core (training layer), a thin re-export so that upstream imports keep working
(``from audiocraft.utils.export import export_encodec, export_lm``). The export itself (one generic
``export_model``, its uses per model kind, and ``export_checkpoint`` choosing the kind from the checkpoint's
``solver``) belongs to audiocraft-models, so that inference never needs this package.
"""

from __future__ import annotations

from audiocraft.models.export import (
    export_checkpoint,
    export_encodec,
    export_lm,
    export_model,
    export_pretrained_compression_model,
)

__all__ = ["export_checkpoint", "export_encodec", "export_lm", "export_model", "export_pretrained_compression_model"]
