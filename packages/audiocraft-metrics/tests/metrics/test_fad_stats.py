"""Reference statistics for FAD computed from audio files (function and command line), then reused."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocraft.data import find_audio_files, save_audio_meta
from audiocraft.metrics import EmbeddingStats, FrechetAudioDistanceMetric, VGGish
from audiocraft.metrics.fad_stats import compute_embedding_stats, main


class MeanStd(torch.nn.Module):
    sample_rate = 8000
    channels = 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.stack([wav.mean(dim=(1, 2)), wav.std(dim=(1, 2)), wav.abs().max(-1).values.mean(-1)], -1)


@pytest.fixture
def reference_folder(tmp_path: Path) -> tuple[Path, torch.Tensor]:
    """Four 1 s stereo clips at 16 kHz written with soundfile, and the same audio as a tensor [4, 2, T]."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "reference"
    folder.mkdir()
    clips = []
    for i in range(4):
        clip = (0.1 + 0.1 * i) * rng.standard_normal((16000, 2)).clip(-3, 3) / 3
        sf.write(folder / f"clip_{i}.wav", clip, 16000, subtype="FLOAT")
        clips.append(torch.from_numpy(clip.T.astype(np.float32)))
    return folder, torch.stack(clips)


def test_function_matches_the_metric_over_the_same_audio(reference_folder: tuple[Path, torch.Tensor]) -> None:
    folder, audio = reference_folder
    files = sorted(str(p) for p in folder.glob("*.wav"))
    stats = compute_embedding_stats(files, MeanStd())
    metric = FrechetAudioDistanceMetric(MeanStd())
    metric.update(audio, audio, sample_rates=16000)
    direct = metric.target_stats()
    assert int(stats.count) == 4
    torch.testing.assert_close(stats.mu, direct.mu)
    torch.testing.assert_close(stats.sigma, direct.sigma)
    pieces = compute_embedding_stats(files, MeanStd(), segment=0.25)
    assert int(pieces.count) == 16


@pytest.mark.slow
def test_command_line_with_vggish_from_folder_and_manifest(
    reference_folder: tuple[Path, torch.Tensor],
    vggish_weights: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, audio = reference_folder
    main([str(folder), str(tmp_path / "ref.pt"), "--model", "vggish", "--model-path", str(vggish_weights)])
    assert "4 embeddings of dimension 128 from 4 files" in capsys.readouterr().out
    save_audio_meta(tmp_path / "ref.jsonl", find_audio_files(folder))
    main([str(tmp_path / "ref.jsonl"), str(tmp_path / "ref_manifest.pt"), "--model-path", str(vggish_weights)])
    from_folder = EmbeddingStats.load(tmp_path / "ref.pt")
    from_manifest = EmbeddingStats.load(tmp_path / "ref_manifest.pt")
    torch.testing.assert_close(from_folder.sigma, from_manifest.sigma)
    # the saved statistics stand in for the reference audio
    model = VGGish.from_pretrained(vggish_weights)
    generated = 0.5 * audio.flip(0)
    with_targets = FrechetAudioDistanceMetric(model)
    with_targets.update(generated, audio, sample_rates=16000)
    reused = FrechetAudioDistanceMetric(model, reference_stats=tmp_path / "ref.pt")
    reused.update(generated, sample_rates=16000)
    assert reused.compute() == pytest.approx(with_targets.compute(), rel=1e-5)
    with pytest.raises(FileNotFoundError, match="reference audio not found"):
        main([str(tmp_path / "missing"), str(tmp_path / "x.pt"), "--model-path", str(vggish_weights)])
