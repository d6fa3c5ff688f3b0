"""audiocraft.utils._media: the dependency-free PNG writer and the mel-spectrogram image."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch

from audiocraft.utils._media import colorize, encode_png, mel_spectrogram_image

Image = pytest.importorskip("PIL.Image", reason="pillow comes with the [tensorboard] extra")


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_png_decodes_to_the_same_pixels(channels, mode):
    image = torch.randint(0, 256, (channels, 37, 53), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    data = encode_png(image)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()  # checks the zlib stream and the chunk CRCs
    assert decoded.mode == mode and decoded.size == (53, 37)
    pixels = np.array(decoded).reshape(37, 53, channels)
    assert np.array_equal(pixels, image.permute(1, 2, 0).numpy())


def test_png_chunks_and_crcs():
    data = encode_png(torch.zeros(3, 2, 5, dtype=torch.uint8))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, tags = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
        tags.append(tag)
        pos += 12 + length
    assert tags == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">II", data[16:24]) == (5, 2)


@pytest.mark.parametrize(
    "bad", [torch.zeros(3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.uint8), torch.zeros(4, 4, dtype=torch.uint8)]
)
def test_png_rejects_other_images(bad):
    with pytest.raises(ValueError, match="uint8 \\[C, H, W\\]"):
        encode_png(bad)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100])
def test_mel_image_puts_high_tones_near_the_top(sample_rate):
    t = torch.arange(sample_rate) / sample_rate

    def brightest_row(freq: float) -> int:
        image = mel_spectrogram_image(0.5 * torch.sin(2 * torch.pi * freq * t)[None], sample_rate)
        assert image.dtype == torch.uint8 and image.shape[:2] == (3, 80)
        return int(image.float().sum(0).mean(-1).argmax())

    low, high = brightest_row(200.0), brightest_row(3000.0)
    assert high < low  # row 0 is the top of the image: highest frequencies
    assert low > 60 and high < 40


def test_mel_image_of_silence_is_dark_and_stereo_is_mixed():
    silent = mel_spectrogram_image(torch.zeros(2, 16000), 16000)
    assert torch.equal(silent, colorize(torch.zeros(silent.shape[1:])))
    tone = 0.5 * torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    assert torch.equal(mel_spectrogram_image(torch.stack([tone, tone]), 16000), mel_spectrogram_image(tone, 16000))
    short = mel_spectrogram_image(tone[:100], 16000)  # shorter than one STFT window
    assert short.shape[0] == 3 and short.shape[-1] >= 1


def test_colorize_goes_from_dark_to_bright():
    ramp = colorize(torch.linspace(0, 1, 11)[None])
    brightness = ramp.float().sum(0)[0]
    assert torch.all(brightness[1:] > brightness[:-1])
    assert ramp[:, 0, 0].tolist() == [0, 0, 4] and ramp[:, 0, -1].tolist() == [252, 253, 191]
