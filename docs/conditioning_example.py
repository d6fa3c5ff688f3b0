"""Condition a toy PyTorch model on text and on a waveform with audiocraft-conditioners alone.

Needs only ``pip install audiocraft-conditioners`` (torch, einops, audiocraft-data): no extra, no download, no file.
The toy task: for each frame of a two-note melody, predict a pitch class. The melody arrives as a waveform
condition (its chromagram, one frame per model step, is added to the model's input by the fuser); the text
condition ("unison" or "a fifth up") says whether to answer the melody's own pitch class or the one seven semitones
above, and is read by cross-attention. Training drops all conditions of a batch with probability 0.3
(classifier-free-guidance dropout), so the same model also learns the unconditional answer, used at inference for
guidance.

Run: ``python docs/conditioning_example.py`` (about 10 s on one CPU core). It prints the accuracy with conditions,
without, and with classifier-free guidance.
"""

from __future__ import annotations

import torch
from torch import nn

from audiocraft.conditioners import (
    ChromaStemConditioner,
    ClassifierFreeGuidanceDropout,
    ConditionFuser,
    ConditioningAttributes,
    ConditioningProvider,
    LUTConditioner,
    WavCondition,
    nullify_wav,
)

SAMPLE_RATE = 16000
SECONDS = 1.0
SHIFTS = {"unison": 0, "a fifth up": 7}
DIM = 32


def melody(notes: tuple[int, int]) -> torch.Tensor:
    """Two sine notes (MIDI numbers), half a second each, as audio ``[1, 1, T]``."""
    half = int(SAMPLE_RATE * SECONDS / 2)
    t = torch.arange(half) / SAMPLE_RATE
    parts = [torch.sin(2 * torch.pi * 440.0 * 2 ** ((n - 69) / 12) * t) for n in notes]
    return torch.cat(parts)[None, None] * 0.5


def make_batch(size: int, generator: torch.Generator) -> tuple[list[ConditioningAttributes], torch.Tensor]:
    """Conditions of ``size`` random items and their per-frame target pitch classes ``[B, 2]`` (one per half)."""
    items, targets = [], []
    for _ in range(size):
        notes = tuple(int(n) for n in torch.randint(57, 81, (2,), generator=generator))
        text = list(SHIFTS)[int(torch.randint(0, 2, (1,), generator=generator))]
        wav = melody(notes)  # type: ignore[arg-type]
        items.append(
            ConditioningAttributes(
                text={"description": text},
                wav={"self_wav": WavCondition(wav, torch.tensor([wav.shape[-1]]), [SAMPLE_RATE], [None], [None])},
            )
        )
        targets.append([(n + SHIFTS[text]) % 12 for n in notes])
    return items, torch.tensor(targets)


class ToyModel(nn.Module):
    """A one-layer transformer decoder over learned positions, with conditions fused in by a ConditionFuser."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.provider = ConditioningProvider(
            {
                "description": LUTConditioner(n_bins=64, dim=16, output_dim=DIM, tokenizer="noop"),
                # demucs_model=None: chroma of the whole signal, no source separation (no [demucs] extra needed)
                "self_wav": ChromaStemConditioner(
                    output_dim=DIM,
                    sample_rate=SAMPLE_RATE,
                    n_chroma=12,
                    radix2_exp=10,
                    duration=SECONDS,
                    demucs_model=None,
                ),
            }
        )
        self.fuser = ConditionFuser({"sum": ["self_wav"], "cross": ["description"]})
        self.positions = nn.Parameter(torch.randn(frames, DIM) * 0.1)
        self.layer = nn.TransformerDecoderLayer(DIM, nhead=4, dim_feedforward=64, batch_first=True, dropout=0.0)
        self.head = nn.Linear(DIM, 12)

    def forward(self, conditions: list[ConditioningAttributes]) -> torch.Tensor:
        """Logits ``[B, frames, 12]``."""
        embedded = self.provider(self.provider.tokenize(conditions))
        x = self.positions.expand(len(conditions), -1, -1)
        fused, cross = self.fuser(x, embedded)
        assert cross is not None
        return self.head(self.layer(fused, cross))


def frame_targets(targets: torch.Tensor, frames: int) -> torch.Tensor:
    """Per-frame targets ``[B, frames]``: the first half of the frames gets the first note's answer."""
    half = frames // 2
    return torch.cat([targets[:, :1].expand(-1, half), targets[:, 1:].expand(-1, frames - half)], dim=1)


def null_conditions(conditions: list[ConditioningAttributes]) -> list[ConditioningAttributes]:
    """The conditions with every attribute nullified (what CFG dropout produces)."""
    return [
        ConditioningAttributes(text={"description": None}, wav={"self_wav": nullify_wav(c.wav["self_wav"])})
        for c in conditions
    ]


def main(steps: int = 100, seed: int = 0) -> dict[str, float]:
    """Train the toy model, then report accuracies with, without and with guided conditions."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    probe = ChromaStemConditioner(
        output_dim=1, sample_rate=SAMPLE_RATE, n_chroma=12, radix2_exp=10, duration=SECONDS, demucs_model=None
    )
    model = ToyModel(frames=probe.chroma_len)
    cfg_dropout = ClassifierFreeGuidanceDropout(p=0.3, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        conditions, targets = make_batch(16, generator)
        logits = model(cfg_dropout(conditions))
        loss = loss_fn(logits.transpose(1, 2), frame_targets(targets, model.frames))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            print(f"step {step:3d}  loss {loss.item():.3f}")
    model.eval()
    cfg_dropout.eval()
    conditions, targets = make_batch(64, generator)
    expected = frame_targets(targets, model.frames)
    with torch.no_grad():
        cond = model(conditions)
        uncond = model(null_conditions(conditions))
        guided = uncond + 3.0 * (cond - uncond)
    scores = {
        name: (logits.argmax(-1) == expected).float().mean().item()
        for name, logits in [("conditioned", cond), ("unconditioned", uncond), ("guided", guided)]
    }
    for name, value in scores.items():
        print(f"accuracy {name:13s} {value:.3f}")
    return scores


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
