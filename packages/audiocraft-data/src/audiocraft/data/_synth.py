"""Tiny deterministic music synthesiser behind the example dataset generator.

Private helper of :mod:`audiocraft.data.example` (``audiocraft-data``). Everything is numpy, driven
by one ``numpy.random.Generator`` per clip: a chord progression in a random key and mode, a bass
line, a melody that favours chord tones on strong beats, and a drum pattern per genre, each voice
rendered with a simple instrument model (band-limited additive saw/square, FM electric piano,
drawbar organ, Karplus-Strong pluck, vibrato flute-like sine). The result sounds like music, but
it is made to exercise pipelines, not to be listened to for pleasure.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}
PROGRESSIONS = {
    "major": [[0, 4, 5, 3], [0, 5, 3, 4], [1, 4, 0, 0], [0, 3, 0, 4], [3, 4, 2, 5]],
    "minor": [[0, 5, 2, 6], [0, 3, 4, 0], [0, 6, 5, 6], [0, 5, 3, 4]],
}


@dataclass(frozen=True)
class Genre:
    """How a genre is rendered and described."""

    name: str
    bpm: tuple[int, int]
    drums: str
    leads: tuple[str, ...]
    chords: str
    moods: tuple[str, ...]
    keywords: tuple[str, ...]
    density: float = 0.6  # probability of a melody onset on each eighth note
    swing: float = 0.0
    sevenths: bool = False
    modes: tuple[str, ...] = ("major", "minor")


GENRES = [
    Genre(
        "electronic",
        (118, 132),
        "four_on_floor",
        ("saw", "square"),
        "pad",
        ("upbeat", "energetic", "euphoric"),
        ("synth", "dance", "club", "four on the floor"),
    ),
    Genre(
        "ambient",
        (60, 80),
        "none",
        ("flute", "epiano"),
        "pad",
        ("calm", "dreamy", "peaceful"),
        ("atmospheric", "pads", "slow", "relaxing"),
        density=0.3,
    ),
    Genre(
        "rock",
        (100, 140),
        "backbeat",
        ("pluck", "brass"),
        "organ",
        ("energetic", "rebellious", "driving"),
        ("guitar", "band", "drums", "riff"),
    ),
    Genre(
        "jazz",
        (90, 140),
        "swing",
        ("epiano", "brass"),
        "epiano",
        ("relaxed", "sophisticated", "smooth"),
        ("swing", "seventh chords", "ride cymbal"),
        density=0.55,
        swing=1 / 3,
        sevenths=True,
    ),
    Genre(
        "hip hop",
        (80, 95),
        "boom_bap",
        ("epiano", "flute"),
        "epiano",
        ("chill", "laid-back", "groovy"),
        ("beat", "boom bap", "sample"),
        density=0.45,
    ),
    Genre(
        "folk",
        (90, 120),
        "light",
        ("pluck", "flute"),
        "pluck",
        ("warm", "nostalgic", "gentle"),
        ("acoustic", "guitar", "campfire"),
        density=0.5,
    ),
    Genre(
        "chiptune",
        (130, 160),
        "fast",
        ("square",),
        "square",
        ("playful", "energetic", "cheerful"),
        ("8-bit", "video game", "retro"),
        density=0.75,
        modes=("major",),
    ),
]

INSTRUMENT_NAMES = {
    "saw": ("synth lead", ["a bright synth lead", "a buzzy sawtooth lead"]),
    "square": ("square lead", ["a chiptune square lead", "a hollow square-wave lead"]),
    "flute": ("flute", ["a mellow flute-like lead", "a soft breathy lead"]),
    "epiano": ("electric piano", ["an electric piano", "a warm Rhodes-style piano"]),
    "brass": ("brass synth", ["a brassy synth", "punchy synth brass"]),
    "pluck": ("guitar", ["a plucked guitar", "a twangy plucked guitar"]),
    "organ": ("organ", ["a warm organ", "a drawbar organ"]),
    "pad": ("pad", ["soft pads", "lush pads"]),
}


def midi_hz(note: float) -> float:
    """Frequency of a MIDI note number."""
    return 440.0 * 2 ** ((note - 69) / 12)


def _envelope(n: int, sr: int, attack: float, release: float, decay: float | None = None) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4))
    if decay is not None:
        env = env * np.exp(-t / decay)
    rel = max(1, min(n, int(release * sr)))
    env[-rel:] *= np.linspace(1.0, 0.0, rel)
    return env


_TABLE = 1024


def _additive(freq: float, n: int, sr: int, odd_only: bool, brightness: float = 1.0, detune: float = 0.0) -> np.ndarray:
    """Band-limited harmonic tone (1/k partials, optionally darker), rendered through a one-period wavetable."""
    k_max = max(1, min(64, int((sr / 2 - 200) // freq)))
    k = np.arange(1, k_max + 1)
    gains = 1.0 / k
    if odd_only:
        gains = gains * (k % 2 == 1)
    if brightness != 1.0:
        gains = gains * np.exp(-(k - 1) / (brightness * 6 + 0.5))
    spectrum = np.zeros(_TABLE // 2 + 1, dtype=np.complex128)
    spectrum[1 : k_max + 1] = -0.5j * gains * _TABLE  # sum_k g_k sin(2 pi k x)
    table = np.fft.irfft(spectrum, _TABLE)
    table = np.append(table, table[0])
    index = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    voices = (-detune, detune) if detune else (0.0,)
    for cents in voices:
        phase = (index * (freq * 2 ** (cents / 1200) * _TABLE / sr)) % _TABLE
        out += np.interp(phase, np.arange(_TABLE + 1), table)
    return out / len(voices)


def _pluck(freq: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    period = max(2, int(round(sr / freq)))
    blocks = -(-n // period) + 1
    buf = np.empty(blocks * period)
    buf[:period] = rng.uniform(-1, 1, period)
    for b in range(1, blocks):
        prev = buf[(b - 1) * period : b * period]
        shifted = np.concatenate([prev[1:], prev[-1:]])
        buf[b * period : (b + 1) * period] = 0.996 * 0.5 * (prev + shifted)
    return buf[:n]


def render_note(instrument: str, freq: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Render one note of ``n`` samples; peak roughly 1."""
    t = np.arange(n) / sr
    if instrument == "saw":
        return 0.6 * _additive(freq, n, sr, False, detune=6.0) * _envelope(n, sr, 0.005, 0.05)
    if instrument == "square":
        return 0.7 * _additive(freq, n, sr, True) * _envelope(n, sr, 0.002, 0.02)
    if instrument == "flute":
        vib = 1 + 0.004 * np.sin(2 * math.pi * 5.0 * t)
        phase = 2 * math.pi * np.cumsum(freq * vib) / sr
        tone = np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.02 * rng.standard_normal(n)
        return 0.8 * tone * _envelope(n, sr, 0.06, 0.08)
    if instrument == "epiano":
        index = 1.8 * np.exp(-t / 0.25) + 0.2
        tone = np.sin(2 * math.pi * freq * t + index * np.sin(2 * math.pi * freq * t))
        return 0.8 * tone * _envelope(n, sr, 0.003, 0.06, decay=0.9)
    if instrument == "brass":
        opening = np.minimum(1.0, t / 0.08)  # the tone brightens during the attack
        tone = (1 - opening) * _additive(freq, n, sr, False, brightness=0.2) + opening * _additive(freq, n, sr, False)
        return 0.6 * tone * _envelope(n, sr, 0.03, 0.05)
    if instrument == "pluck":
        return 0.9 * _pluck(freq, n, sr, rng) * _envelope(n, sr, 0.001, 0.03)
    if instrument == "organ":
        tone = np.zeros(n)
        for h, w in ((1, 1.0), (2, 0.6), (3, 0.4), (4, 0.25), (6, 0.15), (8, 0.1)):  # drawbars
            tone += w * np.sin(2 * math.pi * freq * h * t)
        return 0.45 * tone * _envelope(n, sr, 0.01, 0.05)
    if instrument == "pad":
        return 0.5 * _additive(freq, n, sr, False, brightness=0.25, detune=10.0) * _envelope(n, sr, 0.25, 0.3)
    raise ValueError(f"unknown instrument {instrument!r}")


def _drum_kit(sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    def t(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sr)) / sr

    tk = t(0.35)
    kick = np.sin(2 * math.pi * np.cumsum(48 + 110 * np.exp(-tk / 0.03)) / sr) * np.exp(-tk / 0.14)
    ts = t(0.22)
    noise = rng.standard_normal(len(ts))
    snare = 0.6 * np.diff(noise, prepend=0) / 2 * np.exp(-ts / 0.06) + 0.5 * np.sin(2 * math.pi * 185 * ts) * np.exp(
        -ts / 0.04
    )
    th = t(0.06)
    hat = np.diff(np.diff(rng.standard_normal(len(th)), prepend=0), prepend=0) / 4 * np.exp(-th / 0.015)
    tr = t(0.5)
    ride = sum(np.sign(np.sin(2 * math.pi * f * tr)) for f in (520, 777, 1201, 1663)) / 8 * np.exp(-tr / 0.25)
    ride = np.diff(ride, prepend=0) * 1.5
    tsh = t(0.08)
    shaker = np.diff(rng.standard_normal(len(tsh)), prepend=0) / 3 * np.sin(math.pi * tsh / tsh[-1]) ** 2
    return {"kick": kick, "snare": snare, "hat": hat, "ride": ride, "shaker": shaker}


# 16 steps per bar: which steps hit, for each drum style
_PATTERNS: dict[str, dict[str, list[int]]] = {
    "four_on_floor": {"kick": [0, 4, 8, 12], "snare": [4, 12], "hat": [2, 6, 10, 14]},
    "backbeat": {"kick": [0, 6, 8], "snare": [4, 12], "hat": [0, 2, 4, 6, 8, 10, 12, 14]},
    "swing": {"kick": [0, 8], "ride": [0, 4, 6, 8, 12, 14], "snare": [12]},
    "boom_bap": {"kick": [0, 7, 10], "snare": [4, 12], "hat": [0, 2, 4, 6, 8, 10, 12, 14]},
    "light": {"kick": [0, 8], "shaker": [2, 6, 10, 14]},
    "fast": {"kick": [0, 8], "snare": [4, 12], "hat": list(range(0, 16, 2))},
    "none": {},
}
_DRUM_GAIN = {"kick": 0.9, "snare": 0.6, "hat": 0.35, "ride": 0.3, "shaker": 0.3}


@dataclass
class Song:
    """Musical choices for one clip (what the metadata describes)."""

    genre: Genre
    root: int  # pitch class, 0 = C
    mode: str
    bpm: int
    lead: str
    progression: list[int]
    mood: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Key name, e.g. ``A minor``."""
        return f"{NOTE_NAMES[self.root]} {self.mode}"


def choose_song(rng: np.random.Generator) -> Song:
    """Draw the genre, key, tempo, lead instrument and progression of a clip."""
    genre = GENRES[int(rng.integers(len(GENRES)))]
    mode = genre.modes[int(rng.integers(len(genre.modes)))]
    progs = PROGRESSIONS[mode]
    moods = [str(m) for m in rng.choice(genre.moods, size=2, replace=False)]
    root = int(rng.integers(12))
    bpm = int(rng.integers(genre.bpm[0], genre.bpm[1] + 1))
    lead = genre.leads[int(rng.integers(len(genre.leads)))]
    progression = progs[int(rng.integers(len(progs)))]
    return Song(genre=genre, root=root, mode=mode, bpm=bpm, lead=lead, progression=progression, mood=moods)


def _place(buf: np.ndarray, start: int, sound: np.ndarray, gain: float) -> None:
    if start >= len(buf):
        return
    end = min(len(buf), start + len(sound))
    buf[start:end] += gain * sound[: end - start]


def render_song(song: Song, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Render ``seconds`` of ``song`` as a mono float array in [-1, 1]."""
    n = int(round(seconds * sr))
    beat = 60.0 / song.bpm
    step = beat / 4  # sixteenth note
    bar = 4 * beat
    scale = SCALES[song.mode]
    base = 48 + song.root  # chords around C3..C4
    lead_buf, chord_buf, bass_buf, drum_buf = (np.zeros(n) for _ in range(4))
    kit = _drum_kit(sr, rng)
    pattern = _PATTERNS[song.genre.drums]
    chord_instrument = song.genre.chords

    def degree_pitch(degree: int, octave_base: int) -> int:
        return octave_base + scale[degree % 7] + 12 * (degree // 7)

    def at(time: float) -> int:
        return int(round(time * sr))

    def swung(step_index: int) -> float:
        offbeat = step_index % 4 == 2
        return (step_index + (2 * song.genre.swing if offbeat else 0.0)) * step

    n_bars = int(math.ceil(seconds / bar))
    melody_degree = 7 + int(rng.integers(0, 5))  # start in the octave above the chords
    render: Callable[..., np.ndarray] = render_note
    for b in range(n_bars):
        t0 = b * bar
        degree = song.progression[b % len(song.progression)]
        chord = [degree, degree + 2, degree + 4] + ([degree + 6] if song.genre.sevenths else [])
        chord_len = at(bar if chord_instrument in ("pad", "organ") else 2 * beat)
        for half in (0,) if chord_instrument in ("pad", "organ") else (0, 2):
            for d in chord:
                _place(
                    chord_buf,
                    at(t0 + half * beat),
                    render(chord_instrument, midi_hz(degree_pitch(d, base)), chord_len, sr, rng),
                    0.22 / len(chord) * 3,
                )
        for q in range(4):  # bass on every beat (root, with a fifth on beat 3)
            bass_note = degree_pitch(degree + (4 if q == 2 else 0), base - 12)
            t = np.arange(at(beat * 0.9)) / sr
            tone = np.sin(2 * math.pi * midi_hz(bass_note) * t) + 0.3 * np.sin(4 * math.pi * midi_hz(bass_note) * t)
            _place(bass_buf, at(t0 + q * beat), tone * _envelope(len(t), sr, 0.005, 0.05), 0.45)
        for eighth in range(8):  # melody
            if rng.random() >= song.genre.density and eighth != 0:
                continue
            if eighth % 4 == 0:  # strong beat: closest chord tone
                targets = [c + 7 * o for c in chord for o in (0, 1, 2)]
                melody_degree = min(targets, key=lambda x: abs(x - melody_degree))
            else:
                melody_degree += int(rng.choice([-2, -1, -1, 1, 1, 2]))
                melody_degree = min(max(melody_degree, 5), 16)
            length = beat / 2 * int(rng.choice([1, 1, 2, 3]))
            start = t0 + swung(2 * eighth)
            _place(
                lead_buf,
                at(start),
                render(song.lead, midi_hz(degree_pitch(melody_degree, base)), at(length), sr, rng),
                0.35,
            )
        for drum, steps in pattern.items():
            for s in steps:
                _place(drum_buf, at(t0 + swung(s)), kit[drum], _DRUM_GAIN[drum] * (0.85 + 0.15 * rng.random()))
    mix = lead_buf + 0.8 * chord_buf + 0.7 * bass_buf + 0.8 * drum_buf
    fade = min(n, int(0.01 * sr))
    mix[:fade] *= np.linspace(0, 1, fade)
    mix[-fade:] *= np.linspace(1, 0, fade)
    peak = np.abs(mix).max()
    return mix / peak * 0.9 if peak > 0 else mix
