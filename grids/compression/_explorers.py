"""Explorer of the compression grids: one row per XP with its latest train / valid / evaluate metrics.

Part of the meta-package's grids. ``dora grid compression.<name>`` prints the table; metrics missing
from an XP's history (e.g. ``visqol`` when ViSQOL is off, or ``evaluate`` before its first run) show empty.
"""

from __future__ import annotations

import typing as tp

import treetable as tt

from .._base_explorers import BaseExplorer


class CompressionExplorer(BaseExplorer):
    """Grid table for compression XPs.

    Columns: train epoch, bandwidth, l1, adv and discriminator losses; valid bandwidth, l1, msspec and
    sisnr; evaluate sisnr (negated SI-SNR in dB: lower is better), mel and STFT distances, ViSQOL, codebook
    usage and the entropy bitrate.
    """

    eval_metrics = ["sisnr", "mel", "mrstft", "visqol", "codebook_usage", "entropy_kbps"]

    def get_grid_metrics(self) -> list[tp.Any]:
        return [
            tt.group(
                "train",
                [
                    tt.leaf("epoch"),
                    tt.leaf("bandwidth", ".2f"),
                    tt.leaf("l1", ".4f"),
                    tt.leaf("adv", ".4f"),
                    tt.leaf("d_loss", ".4f"),
                    tt.leaf("ping"),
                ],
                align=">",
            ),
            tt.group(
                "valid",
                [
                    tt.leaf("bandwidth", ".2f"),
                    tt.leaf("l1", ".4f"),
                    tt.leaf("msspec", ".4f"),
                    tt.leaf("sisnr", ".2f"),
                ],
                align=">",
            ),
            tt.group("evaluate", [tt.leaf(name, ".3f") for name in self.eval_metrics], align=">"),
        ]
