"""Benchmark of audiocraft-data segment loading and manifest building (standalone script).

Segment throughput: 1 s segments at 32 kHz from a manifest of N files of D seconds (wav, flac and mp3 in turn),
read with ``AudioDataset.__getitem__`` in one process (num_workers=0) on one thread. Compared with two baselines
that use the same sampling and conversion but another read path:

* ``upstream-1.3 read``: the read path of upstream AudioCraft 1.3's ``audio_read`` (PyAV seek + decode for wav and
  mp3, ``soundfile.read(start=, frames=)`` for flac), re-implemented here because upstream is not installed;
* ``full decode``: decode the whole file, then slice the segment (what a loader that cannot seek does).

Manifest build: files/s of ``scan_audio_files`` (the ``python -m audiocraft.data.audio_dataset`` builder) with
2 worker threads on the same folders, next to upstream 1.3's info path (PyAV for wav/mp3, soundfile for flac).

Run: python benchmarks/data_segment_throughput.py [--num-files 100] [--duration 30] [--segments 300]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import torch

from audiocraft.data.audio import audio_write
from audiocraft.data.audio_dataset import AudioDataset, AudioMeta, scan_audio_files
from audiocraft.data.audio_utils import convert_audio, f32_pcm


def upstream_read(path: str, seek_time: float, duration: float) -> tuple[torch.Tensor, int]:
    """Upstream AudioCraft 1.3 ``audio_read`` read path (flac/ogg: soundfile; others: PyAV seek + decode)."""
    if Path(path).suffix in (".flac", ".ogg"):
        info = soundfile.info(path)
        frames = -1 if duration <= 0 else int(duration * info.samplerate)
        wav, sr = soundfile.read(path, start=int(seek_time * info.samplerate), frames=frames, dtype=np.float32)
        wav = torch.from_numpy(wav).t().contiguous()
        return (wav[None] if wav.dim() == 1 else wav), sr
    import av

    with av.open(path) as af:
        stream = af.streams.audio[0]
        sr = stream.codec_context.sample_rate
        num_frames = int(sr * duration) if duration >= 0 else -1
        frame_offset = int(sr * seek_time)
        af.seek(int(max(0, (seek_time - 0.1)) / stream.time_base), stream=stream)
        frames, length = [], 0
        for frame in af.decode(streams=stream.index):
            current_offset = int(frame.rate * frame.pts * frame.time_base)
            strip = max(0, frame_offset - current_offset)
            buf = torch.from_numpy(frame.to_ndarray())
            if buf.shape[0] != stream.channels:
                buf = buf.view(-1, stream.channels).t()
            frames.append(buf[:, strip:])
            length += frames[-1].shape[1]
            if num_frames > 0 and length >= num_frames:
                break
        wav = torch.cat(frames, dim=1)
        if num_frames > 0:
            wav = wav[:, :num_frames]
        return f32_pcm(wav), sr


def full_decode_read(path: str, seek_time: float, duration: float) -> tuple[torch.Tensor, int]:
    """Decode the whole file with soundfile, then slice."""
    wav, sr = soundfile.read(path, dtype="float32", always_2d=True)
    start = int(round(seek_time * sr))
    return torch.from_numpy(np.ascontiguousarray(wav[start : start + int(round(duration * sr))].T)), sr


class BaselineDataset(AudioDataset):
    """AudioDataset with the same sampling and conversion, but another segment read function."""

    def __init__(self, *args, read_fn, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_fn = read_fn

    def _read_segment(self, file_meta, seek_time):
        out, sr = self.read_fn(file_meta.path, seek_time, self.segment_duration)
        out = convert_audio(out, sr, self.sample_rate, self.channels)
        target = int(round(self.segment_duration * self.sample_rate))
        n_frames = min(out.shape[-1], target)
        out = torch.nn.functional.pad(out[..., :target], (0, max(0, target - out.shape[-1])))
        from audiocraft.data.audio_dataset import SegmentInfo

        return out, SegmentInfo(file_meta, seek_time, n_frames, target, self.sample_rate, out.shape[0])


def upstream_info(path: str) -> AudioMeta:
    """Upstream 1.3 ``_get_audio_meta(minimal=True)``: soundfile for flac/ogg, PyAV otherwise."""
    if Path(path).suffix in (".flac", ".ogg"):
        info = soundfile.info(path)
        return AudioMeta(path, info.frames / info.samplerate, info.samplerate)
    import av

    with av.open(path) as af:
        stream = af.streams.audio[0]
        return AudioMeta(path, float(stream.duration * stream.time_base), stream.codec_context.sample_rate)


def make_folder(root: Path, fmt: str, num_files: int, duration: float, sample_rate: int, distinct: int = 4) -> list:
    folder = root / fmt
    rng = np.random.default_rng(0)
    sources = []
    for i in range(min(distinct, num_files)):
        t = np.arange(int(duration * sample_rate)) / sample_rate
        tone = sum(
            np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (k + 1) for k, f in enumerate(rng.uniform(100, 2000, 6))
        )
        wav = torch.from_numpy(tone + 0.05 * rng.standard_normal(len(t))).float()[None]
        sources.append(audio_write(folder / f"src{i}", wav, sample_rate, format=fmt))
    paths = []
    for i in range(num_files):
        dst = folder / f"file{i:04d}.{fmt}"
        shutil.copy(sources[i % len(sources)], dst)
        paths.append(dst)
    for src in sources:
        src.unlink()
    return [AudioMeta(str(p), duration, sample_rate) for p in paths]


def segments_per_second(datasets: dict[str, AudioDataset], n: int, repeats: int = 3) -> dict[str, float]:
    """Best of ``repeats`` timed passes over items 0..n-1 for each dataset, interleaved so that a change of load
    on a shared machine hits every reader alike."""
    best = dict.fromkeys(datasets, 0.0)
    for ds in datasets.values():
        ds.set_epoch(0)
        for i in range(min(5, n)):  # warm-up (imports, page cache)
            ds[i]
    for _ in range(repeats):
        for name, ds in datasets.items():
            start = time.perf_counter()
            for i in range(n):
                ds[i]
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def upstream_scan(root: Path, ext: str, workers: int) -> int:
    """Upstream 1.3 ``find_audio_files(minimal=True, resolve=True, workers=N)``: walk, resolve, read infos."""
    paths = [str((Path(d) / f).resolve()) for d, _, files in os.walk(root) for f in files if f.endswith(ext)]
    with ThreadPoolExecutor(workers) as pool:
        return len(list(pool.map(upstream_info, paths)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-files", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per file")
    parser.add_argument("--segments", type=int, default=300, help="segments read per format and reader")
    parser.add_argument("--formats", nargs="+", default=["wav", "flac", "mp3"])
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--workers", type=int, default=2, help="threads for the manifest build")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import av  # noqa: F401

        has_av = True
    except ImportError:
        has_av = False
    cmd = "python benchmarks/data_segment_throughput.py " + " ".join(sys.argv[1:])
    print(
        f"# {args.num_files} files x {args.duration:g} s, {args.sample_rate} Hz mono; 1 s segments at "
        f"{args.sample_rate} Hz, num_workers=0, torch threads=1, {args.segments} segments per run"
    )
    print(
        f"{'format':6} {'audiocraft-data':>16} {'upstream-1.3 read':>18} {'full decode':>12} {'vs upstream':>12} "
        f"{'vs full':>8}   (segments/s)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats:
            metas = make_folder(Path(tmp), fmt, args.num_files, args.duration, args.sample_rate)
            kwargs = dict(
                segment_duration=1.0,
                sample_rate=args.sample_rate,
                channels=1,
                num_samples=args.segments,
                shuffle=True,
                shuffle_seed=0,
            )
            readers = {
                "ours": AudioDataset(metas, **kwargs),
                "full": BaselineDataset(metas, read_fn=full_decode_read, **kwargs),
            }
            if has_av:
                readers["upstream"] = BaselineDataset(metas, read_fn=upstream_read, **kwargs)
            speed = segments_per_second(readers, args.segments)
            ours, full, upstream = speed["ours"], speed["full"], speed.get("upstream", float("nan"))
            print(f"{fmt:6} {ours:16.1f} {upstream:18.1f} {full:12.1f} {ours / upstream:11.1f}x {ours / full:7.1f}x")
            build = up_build = 0.0
            for _ in range(3):  # best of 3, interleaved
                start = time.perf_counter()
                scanned, failures = scan_audio_files(Path(tmp) / fmt, exts=[f".{fmt}"], workers=args.workers)
                build = max(build, len(scanned) / (time.perf_counter() - start))
                assert len(scanned) == args.num_files and not failures
                if has_av:
                    start = time.perf_counter()
                    count = upstream_scan(Path(tmp) / fmt, f".{fmt}", args.workers)
                    up_build = max(up_build, count / (time.perf_counter() - start))
            if not has_av:
                up_build = float("nan")
            rows.append((fmt, build, up_build))
            shutil.rmtree(Path(tmp) / fmt)
    print(f"\nmanifest build, {args.workers} workers (files/s):")
    for fmt, build, up_build in rows:
        print(f"{fmt:6} audiocraft-data {build:8.0f}   upstream-1.3 info path {up_build:8.0f}")
    print(f"\nreproduce: {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
