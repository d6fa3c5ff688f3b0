"""Dora grids of the MusicGen task: `dora grid musicgen.<name>` (see docs/MUSICGEN_TRAINING.md)."""
