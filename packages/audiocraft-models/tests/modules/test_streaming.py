"""Streaming: a causal model fed chunk by chunk gives its offline output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiocraft.modules import SEANetDecoder, SEANetEncoder, StreamableConv1d, StreamableConvTranspose1d
from audiocraft.modules.lstm import StreamableLSTM, set_lstm_cpu_threads
from audiocraft.modules.streaming import StreamingModule


def _stream(module: StreamingModule, x: torch.Tensor, chunk: int, flush: bool = True) -> torch.Tensor:
    outs = []
    with torch.no_grad(), module.streaming():
        for piece in torch.split(x, chunk, dim=-1):
            outs.append(module(piece))
        if flush:
            last = module.flush()
            if last is not None:
                outs.append(last)
    return torch.cat(outs, dim=-1)


@pytest.mark.parametrize("chunk", [1600, 1001])
def test_golden_encodec_streams_to_the_upstream_codes(upstream, golden_model, chunk: int) -> None:
    for wav, codes_file in [("input.wav", "codes.npy"), ("input_odd.wav", "codes_odd.npy")]:
        x = upstream.wav(wav)
        pieces = []
        with torch.no_grad(), golden_model.streaming():
            for piece in torch.split(x, chunk, dim=-1):
                codes, _ = golden_model.encode(piece)
                pieces.append(codes)
            last = golden_model.flush_encode()
            if last is not None:
                pieces.append(last)
        np.testing.assert_array_equal(torch.cat(pieces, dim=-1).numpy(), upstream.npy(codes_file))
    assert golden_model.get_streaming_state() == {}  # cleared on exit


def test_golden_encodec_streaming_decode_frame_by_frame(upstream, golden_model) -> None:
    codes = torch.from_numpy(upstream.npy("codes.npy"))[..., :25]
    with torch.no_grad():
        offline = golden_model.decode(codes)
        with golden_model.streaming():
            frames = [golden_model.decode(codes[..., i : i + 1]) for i in range(codes.shape[-1])]
    assert all(f.shape[-1] == 320 for f in frames)
    # causal: the first 25 frames decode to the first 25 * 320 samples of the upstream decoding
    np.testing.assert_allclose(offline.numpy(), upstream.npy("decoded.npy")[..., : 25 * 320], atol=1e-4, rtol=0)
    np.testing.assert_allclose(torch.cat(frames, -1).numpy(), offline.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_causal_seanet_without_norm_streams(pad_mode: str) -> None:
    torch.manual_seed(0)
    kwargs = dict(
        channels=2,
        dimension=8,
        n_filters=4,
        n_residual_layers=2,
        ratios=[4, 3],
        causal=True,
        pad_mode=pad_mode,
        lstm=1,
        true_skip=False,
        norm="none",
    )
    encoder, decoder = SEANetEncoder(**kwargs).eval(), SEANetDecoder(**kwargs, trim_right_ratio=0.5).eval()
    x = torch.randn(2, 2, 12 * 20 + 5)
    with torch.no_grad():
        latent = encoder(x)
        audio = decoder(latent)
    streamed_latent = _stream(encoder, x, chunk=50)
    torch.testing.assert_close(streamed_latent, latent, atol=1e-5, rtol=0)
    streamed_audio = _stream(decoder, latent, chunk=3)
    assert streamed_audio.shape == audio.shape
    torch.testing.assert_close(streamed_audio, audio, atol=1e-5, rtol=0)


def test_transposed_conv_partial_trim_flushes_held_samples() -> None:
    torch.manual_seed(0)
    conv = StreamableConvTranspose1d(3, 2, kernel_size=8, stride=4, causal=True, trim_right_ratio=0.25)
    x = torch.randn(1, 3, 9)
    with torch.no_grad():
        offline = conv(x)
    assert offline.shape[-1] == 36
    torch.testing.assert_close(_stream(conv, x, chunk=2), offline, atol=1e-6, rtol=0)
    without_flush = _stream(conv, x, chunk=2, flush=False)
    assert without_flush.shape[-1] == 36 - 3  # 4 - ceil(4 * 0.25) = 3 samples trimmed on the left, flushed at the end


def test_non_causal_modules_refuse_to_stream() -> None:
    conv = StreamableConv1d(1, 1, kernel_size=3, causal=False)
    with conv.streaming(), pytest.raises(RuntimeError, match="causal=True"):
        conv(torch.zeros(1, 1, 10))


def test_streaming_state_get_set_and_reset() -> None:
    torch.manual_seed(0)
    lstm = StreamableLSTM(4, num_layers=2)
    x = torch.randn(3, 4, 10)
    with torch.no_grad():
        offline = lstm(x)
        with lstm.streaming():
            first = lstm(x[..., :6])
            state = lstm.get_streaming_state()
            assert set(state) == {"h", "c"} and state["h"].shape == (3, 2, 4)  # batch first
            lstm.reset_streaming()
            lstm.set_streaming_state(state)
            second = lstm(x[..., 6:])
            with pytest.raises(KeyError, match="nope"):
                lstm.set_streaming_state({"nope.h": state["h"]})
    torch.testing.assert_close(torch.cat([first, second], -1), offline, atol=1e-6, rtol=0)
    assert lstm.get_streaming_state() == {} and not lstm.is_streaming


@pytest.mark.parametrize("setting, expected", [(None, 2), (1, 1)])
def test_lstm_cpu_threads_setting_is_applied_restored_and_bitwise_neutral(setting: int | None, expected: int) -> None:
    torch.manual_seed(0)
    lstm = StreamableLSTM(64, num_layers=2)
    x = torch.randn(2, 64, 40, requires_grad=True)
    seen: list[int] = []
    handle = lstm.lstm.register_forward_pre_hook(lambda module, inputs: seen.append(torch.get_num_threads()))
    previous = torch.get_num_threads()
    previous_setting = set_lstm_cpu_threads(setting)
    torch.set_num_threads(2)
    try:
        y = lstm(x)
        assert torch.get_num_threads() == 2  # restored after the call
        # The reference: torch's LSTM on two threads, with the skip connection, in the [T, B, C] layout.
        handle.remove()
        ref = lstm.lstm(x.permute(2, 0, 1))[0].add(x.permute(2, 0, 1)).permute(1, 2, 0)
    finally:
        torch.set_num_threads(previous)
        set_lstm_cpu_threads(previous_setting)
    assert seen == [expected]
    assert torch.equal(y, ref)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), x)
    assert torch.equal(grad, ref_grad)


def test_lstm_cpu_threads_rejects_a_bad_count() -> None:
    with pytest.raises(ValueError, match="set_lstm_cpu_threads needs a thread count >= 1 or None, got 0"):
        set_lstm_cpu_threads(0)
