"""PESQ (ITU-T P.862) speech quality, through the `pesq` package (`[pesq]` extra).

Part of `audiocraft.metrics` (layer: metrics). Audio is downmixed to mono and resampled to 16 kHz (8 kHz for
narrow-band mode) before scoring, as upstream AudioCraft's `PesqMetric` does. Items with no detected speech
are skipped and counted in `skipped`. The sum of scores and the count are accumulated, so the mean is exact
across workers.
"""

from collections.abc import Sequence

import torch

from ._audio import as_sizes, check_pair, convert_audio
from ._base import Metric


def _import_pesq():  # type: ignore[no-untyped-def]
    try:
        import pesq
    except ImportError as exc:
        raise ImportError(
            "PesqMetric needs the optional package 'pesq': pip install 'audiocraft-metrics[pesq]'"
        ) from exc
    return pesq


class PesqMetric(Metric):
    """Mean PESQ MOS-LQO of estimates against references.

    Wide-band PESQ ranges from about 1.04 (bad) to 4.64 (identical); narrow-band from about 1.02 to 4.55.

    Args:
        sample_rate: Sample rate of the audio given to `update`.
        mode: "wb" (wide band, scored at 16 kHz) or "nb" (narrow band, scored at 8 kHz).
    """

    sum_pesq: torch.Tensor
    total: torch.Tensor
    skipped: torch.Tensor

    def __init__(self, sample_rate: int, mode: str = "wb") -> None:
        super().__init__()
        if mode not in ("wb", "nb"):
            raise ValueError(f"mode={mode!r}; expected 'wb' or 'nb'")
        self._pesq = _import_pesq()
        self.sr = sample_rate
        self.mode = mode
        self.pesq_rate = 16000 if mode == "wb" else 8000
        self.add_state("sum_pesq", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("total", torch.tensor(0, dtype=torch.int64))
        self.add_state("skipped", torch.tensor(0, dtype=torch.int64))

    def score(self, estimate: torch.Tensor, reference: torch.Tensor) -> float | None:
        """PESQ of one mono estimate `[T]` against its reference `[T]`, both at the scoring rate (None: no speech)."""
        if not reference.abs().max() > 0:
            return None  # a silent reference has no utterance (and would make pesq divide by zero)
        try:
            return float(
                self._pesq.pesq(
                    self.pesq_rate, reference.double().cpu().numpy(), estimate.double().cpu().numpy(), self.mode
                )
            )
        except self._pesq.NoUtterancesError:
            return None

    @torch.no_grad()
    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
    ) -> None:
        """Adds a batch of estimates `preds` and references `targets` `[B, C, T]`, trimmed to `sizes` `[B]`."""
        check_pair(preds, targets)
        for est, ref, n in zip(preds, targets, as_sizes(sizes, preds)):
            est = convert_audio(est[None, :, :n], self.sr, self.pesq_rate, 1)[0, 0]
            ref = convert_audio(ref[None, :, :n], self.sr, self.pesq_rate, 1)[0, 0]
            value = self.score(est, ref)
            if value is None:
                self.skipped += 1
            else:
                self.sum_pesq += value
                self.total += 1

    def compute(self) -> float:
        """Mean PESQ over all scored items on all workers."""
        states = self.reduced_states()
        if int(states["total"]) == 0:
            raise RuntimeError(f"PesqMetric has no scored item ({int(states['skipped'])} skipped without speech)")
        return float(states["sum_pesq"]) / int(states["total"])
