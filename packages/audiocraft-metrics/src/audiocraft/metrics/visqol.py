"""ViSQOL, run through Google's official `visqol` binary and its batch CSV file protocol.

Part of `audiocraft.metrics` (layer: metrics). The wrapper writes each reference/degraded pair as 16-bit PCM
WAV at the mode's sample rate (48 kHz "audio", 16 kHz "speech"), lists them in a CSV (`reference,degraded`),
runs `visqol --batch_input_csv IN --results_csv OUT --similarity_to_quality_model MODEL [--use_speech_mode]`
and reads the `moslqo` column of OUT. The binary is never installed or downloaded: its path comes from the
caller (config key `metrics.visqol.bin`), and a missing binary or model raises an error saying what to set.
"""

import csv
import json
import logging
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ._audio import as_sizes, check_pair, resample_torchaudio
from ._base import Metric

logger = logging.getLogger(__name__)


def write_wav_pcm16(path: str | Path, wav: torch.Tensor, sample_rate: int) -> None:
    """Writes audio `[C, T]` in [-1, 1] as a 16-bit PCM WAV file (values are clamped to +-0.99 first)."""
    data = (wav.detach().cpu().float().clamp(-0.99, 0.99) * 32767).round().to(torch.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(data.shape[0])
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(np.ascontiguousarray(data.T.numpy()).astype("<i2").tobytes())


class ViSQOL(Metric):
    """ViSQOL MOS-LQO (1 to 5, higher is better) of degraded audio against references, via the official binary.

    `bin` is either the executable itself or the root of a ViSQOL build (then `bin/bazel-bin/visqol` is run,
    as in upstream AudioCraft). `model` is a path, or a file name looked up in the `model/` folder of the build
    (next to the executable, or one level above it).

    Calling the module, `visqol(ref_sig, deg_sig, sr)`, returns the mean score of that batch, as upstream's
    wrapper does; `update(preds, targets, sample_rate)` / `compute()` accumulate scores (sum and count).

    Args:
        bin: Path to the `visqol` executable or to the ViSQOL build folder (config `metrics.visqol.bin`).
        mode: "audio" (48 kHz, music/general audio) or "speech" (16 kHz, voice activity detection).
        model: Similarity-to-quality model (config `metrics.visqol.model`).
        debug: Ask the binary for debug output and keep it in `last_debug`.
        timeout: Seconds allowed for one run of the binary (None: no limit).
    """

    score_sum: torch.Tensor
    count: torch.Tensor

    SAMPLE_RATES_MODES = {"audio": 48_000, "speech": 16_000}
    ALLOWED_SAMPLE_RATES = frozenset(SAMPLE_RATES_MODES.values())

    def __init__(
        self,
        bin: str | Path | None,
        mode: str = "audio",
        model: str = "libsvm_nu_svr_model.txt",
        debug: bool = False,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        if mode not in self.SAMPLE_RATES_MODES:
            raise ValueError(f"ViSQOL mode={mode!r}; expected one of {sorted(self.SAMPLE_RATES_MODES)}")
        self.visqol_mode = mode
        self.target_sr = self.SAMPLE_RATES_MODES[mode]
        self.visqol_bin, model_dirs = self._find_binary(bin)
        self.visqol_model = self._find_model(model, model_dirs)
        self.debug = debug
        self.timeout = timeout
        self.last_debug: dict | list | None = None
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("count", torch.tensor(0, dtype=torch.int64))

    @staticmethod
    def _find_binary(bin: str | Path | None) -> tuple[Path, list[Path]]:
        if bin is None or str(bin) == "":
            raise ValueError(
                "ViSQOL needs the path to Google's visqol binary or its build folder "
                "(config key metrics.visqol.bin); it is not bundled with audiocraft-metrics"
            )
        root = Path(bin).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"ViSQOL binary not found at {root} (config key metrics.visqol.bin)")
        if root.is_dir():
            exe = root / "bazel-bin" / "visqol"
            if not exe.is_file():
                raise FileNotFoundError(
                    f"{root} is a folder but holds no bazel-bin/visqol executable; build ViSQOL "
                    "there or point metrics.visqol.bin at the executable"
                )
            return exe, [root / "model"]
        if not os.access(root, os.X_OK):
            raise PermissionError(f"ViSQOL binary {root} is not executable")
        return root, [root.parent / "model", root.parent.parent / "model"]

    @staticmethod
    def _find_model(model: str | Path, model_dirs: list[Path]) -> Path:
        candidates = [Path(model).expanduser()] + [d / str(model) for d in model_dirs]
        for path in candidates:
            if path.is_file():
                return path
        raise FileNotFoundError(
            f"ViSQOL model {model!r} not found; looked at {[str(c) for c in candidates]} "
            "(config key metrics.visqol.model)"
        )

    def _prepare_files(
        self,
        tmp_dir: Path,
        ref_sig: torch.Tensor,
        deg_sig: torch.Tensor,
        sr: int,
        sizes: list[int],
        pad_with_silence: bool,
    ) -> Path:
        pad = int(0.5 * self.target_sr)
        input_csv = tmp_dir / "input.csv"
        with open(input_csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["reference", "degraded"])
            for i, (ref, deg, n) in enumerate(zip(ref_sig, deg_sig, sizes)):
                pair = []
                for name, wav in (("ref", ref), ("deg", deg)):
                    wav = resample_torchaudio(wav[:, :n], sr, self.target_sr)  # upstream: torchaudio Resample
                    if pad_with_silence:
                        wav = torch.nn.functional.pad(wav, (pad, pad))
                    path = tmp_dir / f"{name}_{i}.wav"
                    write_wav_pcm16(path, wav, self.target_sr)
                    pair.append(str(path))
                writer.writerow(pair)
        return input_csv

    def _run_visqol(self, input_csv: Path, results_csv: Path, debug_json: Path | None) -> None:
        cmd = [str(self.visqol_bin), "--batch_input_csv", str(input_csv), "--results_csv", str(results_csv)]
        if debug_json is not None:
            cmd += ["--output_debug", str(debug_json)]
        if self.visqol_mode == "speech":
            cmd += ["--use_speech_mode"]
        cmd += ["--similarity_to_quality_model", str(self.visqol_model)]
        try:
            result = subprocess.run(cmd, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"ViSQOL ({self.visqol_bin}) did not finish within {self.timeout} s") from exc
        if result.returncode:
            raise RuntimeError(
                f"ViSQOL ({self.visqol_bin}) failed with exit code {result.returncode}:\n"
                f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}"
            )

    @staticmethod
    def _read_scores(results_csv: Path, degraded: list[str]) -> list[float]:
        if not results_csv.exists():
            raise RuntimeError(f"ViSQOL wrote no results file {results_csv}")
        with open(results_csv, newline="") as f:
            rows = list(csv.DictReader(f, skipinitialspace=True))
        if rows and "moslqo" not in rows[0]:
            raise RuntimeError(f"ViSQOL results {results_csv} have no 'moslqo' column: {list(rows[0])}")
        by_file = {Path(row.get("degraded", "")).name: float(row["moslqo"]) for row in rows}
        try:
            return [by_file[Path(d).name] for d in degraded]
        except KeyError as exc:
            raise RuntimeError(f"ViSQOL results {results_csv} miss the pair of {exc}") from exc

    def scores(
        self,
        ref_sig: torch.Tensor,
        deg_sig: torch.Tensor,
        sr: int,
        sizes: Sequence[int] | torch.Tensor | None = None,
        pad_with_silence: bool = False,
    ) -> list[float]:
        """ViSQOL score of each pair.

        Args:
            ref_sig: References `[B, C, T]`.
            deg_sig: Degraded signals `[B, C, T]`.
            sr: Sample rate of both (resampled to the mode's rate).
            sizes: Valid length of each item `[B]`.
            pad_with_silence: Add 0.5 s of silence on both sides, as ViSQOL's guidelines recommend.
        """
        check_pair(deg_sig, ref_sig)
        lengths = as_sizes(sizes, ref_sig)
        tmp_dir = Path(tempfile.mkdtemp(prefix="visqol_"))
        try:
            input_csv = self._prepare_files(tmp_dir, ref_sig, deg_sig, sr, lengths, pad_with_silence)
            results_csv = tmp_dir / "results.csv"
            debug_json = tmp_dir / "debug.json" if self.debug else None
            logger.debug("running ViSQOL (%s mode) on %d pairs", self.visqol_mode, len(lengths))
            self._run_visqol(input_csv, results_csv, debug_json)
            if debug_json is not None and debug_json.exists():
                self.last_debug = json.loads(debug_json.read_text())
            return self._read_scores(results_csv, [str(tmp_dir / f"deg_{i}.wav") for i in range(len(lengths))])
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)

    def forward(
        self,
        ref_sig: torch.Tensor,
        deg_sig: torch.Tensor,
        sr: int,  # type: ignore[override]
        pad_with_silence: bool = False,
    ) -> float:
        """Mean ViSQOL score of a batch (upstream's call signature); the state is untouched."""
        values = self.scores(ref_sig, deg_sig, sr, pad_with_silence=pad_with_silence)
        return sum(values) / len(values) if values else 0.0

    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,
        sample_rate: int,  # type: ignore[override]
        sizes: Sequence[int] | torch.Tensor | None = None,
        pad_with_silence: bool = False,
    ) -> None:
        """Scores degraded audio `preds` against references `targets` `[B, C, T]` and accumulates the scores."""
        values = self.scores(targets, preds, sample_rate, sizes=sizes, pad_with_silence=pad_with_silence)
        self.score_sum += sum(values)
        self.count += len(values)

    def compute(self) -> float:
        """Mean ViSQOL score over all pairs on all workers."""
        states = self.reduced_states()
        if int(states["count"]) == 0:
            raise RuntimeError("ViSQOL.compute() called before any update()")
        return float(states["score_sum"]) / int(states["count"])
