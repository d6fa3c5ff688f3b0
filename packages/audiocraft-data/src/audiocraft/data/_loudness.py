"""Integrated loudness (ITU-R BS.1770-4, LUFS) in plain torch, for the data layer.

Private helper of :mod:`audiocraft.data.audio_utils`. It follows the recipe that torchaudio's
``functional.loudness`` uses (and hence what upstream AudioCraft's loudness normalisation measures):
a K-weighting made of a high-shelf biquad (+4 dB at 1500 Hz, Q=1/sqrt(2)) and a high-pass biquad
(38 Hz, Q=0.5), each output clamped to [-1, 1] as torchaudio's ``lfilter`` does, then mean square
energy over 400 ms blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate 10 LU
below the ungated level. The IIR filters are applied as FFT convolutions with their impulse
response truncated once it has decayed below float precision, so no torchaudio (and no SciPy) is needed.
"""

import math

import numpy as np
import torch

_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
_IR_SECONDS = 0.25  # both K-weighting filters have decayed below 1e-12 well before this


def _high_shelf(sample_rate: int, gain_db: float, freq: float, q: float) -> tuple[list[float], list[float]]:
    w0 = 2 * math.pi * freq / sample_rate
    alpha = math.sin(w0) / 2 / q
    amp = math.exp(gain_db / 40 * math.log(10))
    t1 = 2 * math.sqrt(amp) * alpha
    t2 = (amp - 1) * math.cos(w0)
    t3 = (amp + 1) * math.cos(w0)
    b = [amp * ((amp + 1) + t2 + t1), -2 * amp * ((amp - 1) + t3), amp * ((amp + 1) + t2 - t1)]
    a = [(amp + 1) - t2 + t1, 2 * ((amp - 1) - t3), (amp + 1) - t2 - t1]
    return b, a


def _high_pass(sample_rate: int, freq: float, q: float) -> tuple[list[float], list[float]]:
    w0 = 2 * math.pi * freq / sample_rate
    alpha = math.sin(w0) / 2 / q
    b = [(1 + math.cos(w0)) / 2, -1 - math.cos(w0), (1 + math.cos(w0)) / 2]
    a = [1 + alpha, -2 * math.cos(w0), 1 - alpha]
    return b, a


def _impulse_response(b: list[float], a: list[float], length: int) -> np.ndarray:
    b0, b1, b2 = (x / a[0] for x in b)
    a1, a2 = a[1] / a[0], a[2] / a[0]
    out = np.zeros(length)
    y1 = y2 = 0.0
    for n in range(length):
        x = b0 if n == 0 else (b1 if n == 1 else (b2 if n == 2 else 0.0))
        y = x - a1 * y1 - a2 * y2
        out[n] = y
        y2, y1 = y1, y
    return out


def _fir(wav: torch.Tensor, ir: np.ndarray) -> torch.Tensor:
    length = wav.shape[-1]
    n_fft = 1 << (length + len(ir) - 1).bit_length()
    kernel = torch.from_numpy(ir).to(torch.float64)
    spec = torch.fft.rfft(wav.to(torch.float64), n_fft) * torch.fft.rfft(kernel, n_fft)
    return torch.fft.irfft(spec, n_fft)[..., :length].to(wav.dtype)


def k_weighting(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Apply the BS.1770 K-weighting filter (torchaudio flavour, with clamping).

    Args:
        wav (torch.Tensor): audio of shape [..., T].
        sample_rate (int): sample rate of ``wav``.

    Returns:
        torch.Tensor: filtered audio of shape [..., T].
    """
    length = min(wav.shape[-1], max(64, int(_IR_SECONDS * sample_rate)))
    shelf = _impulse_response(*_high_shelf(sample_rate, 4.0, 1500.0, 1 / math.sqrt(2)), length)
    high_pass = _impulse_response(*_high_pass(sample_rate, 38.0, 0.5), length)
    out = _fir(wav, shelf).clamp(-1, 1)
    return _fir(out, high_pass).clamp(-1, 1)


def integrated_loudness(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Gated integrated loudness in LUFS.

    Args:
        wav (torch.Tensor): audio of shape [..., C, T] with C <= 5 (L, R, C, Ls, Rs) and at least 400 ms long.
        sample_rate (int): sample rate of ``wav``.

    Returns:
        torch.Tensor: loudness of shape [...] (``-inf`` or ``nan`` for digital silence).

    Raises:
        ValueError: if there are more than 5 channels or the audio is shorter than one 400 ms block.
    """
    if wav.dim() < 2 or wav.shape[-2] > 5:
        raise ValueError(f"loudness expects [..., C, T] audio with at most 5 channels, got shape {tuple(wav.shape)}")
    block = int(0.4 * sample_rate)
    hop = int(0.4 * sample_rate * 0.25)
    if wav.shape[-1] < block:
        raise ValueError(f"loudness needs at least 400 ms of audio ({block} samples), got {wav.shape[-1]}")
    weights = torch.tensor(_CHANNEL_WEIGHTS[: wav.shape[-2]], dtype=wav.dtype, device=wav.device)
    filtered = k_weighting(wav, sample_rate)
    energy = filtered.square().unfold(-1, block, hop).mean(dim=-1)  # [..., C, N]
    block_loudness = -0.691 + 10 * torch.log10((weights[:, None] * energy).sum(dim=-2))  # [..., N]
    gate = block_loudness > -70.0
    gated_energy = (gate[..., None, :] * energy).sum(-1) / gate.sum(-1, keepdim=True)
    relative = -0.691 + 10 * torch.log10((weights * gated_energy).sum(-1)) - 10.0
    gate = gate & (block_loudness > relative[..., None])
    gated_energy = (gate[..., None, :] * energy).sum(-1) / gate.sum(-1, keepdim=True)
    return -0.691 + 10 * torch.log10((weights * gated_energy).sum(-1))
