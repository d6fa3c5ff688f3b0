"""Explorers of the language-model grids (MusicGen, AudioGen): one row per XP with its latest metrics.

Part of the meta-package's grids. `LMExplorer` shows the cross-entropy and perplexity of train / valid (and of
evaluate when ``evaluate.metrics.base``), plus the objective metrics of the evaluate stage; `GenerationEvalExplorer`
shows the evaluate stage alone (XPs run with ``execute_only=evaluate``). Metrics an XP does not have show empty.
"""

from __future__ import annotations

import typing as tp

import treetable as tt

from .._base_explorers import BaseExplorer

# Objective metrics of the evaluate stage (`audiocraft.solvers._lm_generation`): KLD gives one value per direction.
EVAL_METRICS = ["ce", "ppl", "fad", "kld_pq", "kld_qp", "kld_both", "text_consistency", "chroma_cosine"]


class LMExplorer(BaseExplorer):
    """Grid table for LM XPs: train / valid ``ce``, ``ppl`` (and learning rate), evaluate metrics."""

    eval_metrics = EVAL_METRICS

    def get_grid_metrics(self) -> list[tp.Any]:
        return [
            tt.group(
                "train",
                [
                    tt.leaf("epoch"),
                    tt.leaf("duration", ".1f"),  # minutes
                    tt.leaf("ce", ".4f"),
                    tt.leaf("ppl", ".3f"),
                    tt.leaf("lr", ".2E"),
                    tt.leaf("ping"),
                ],
                align=">",
            ),
            tt.group(
                "valid",
                [
                    tt.leaf("ce", ".4f"),
                    tt.leaf("ppl", ".3f"),
                ],
                align=">",
            ),
            tt.group("evaluate", [tt.leaf(name, ".4f") for name in self.eval_metrics], align=">"),
        ]


class GenerationEvalExplorer(BaseExplorer):
    """Grid table for evaluation-only XPs (``execute_only=evaluate``): the objective metrics alone."""

    def stages(self) -> list[str]:
        return ["evaluate"]

    def get_grid_metrics(self) -> list[tp.Any]:
        return [tt.group("evaluate", [tt.leaf(name, ".4f") for name in EVAL_METRICS], align=">")]
