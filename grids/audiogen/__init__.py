"""Dora grids of the AudioGen task: `dora grid audiogen.<name>` (see docs/MUSICGEN_TRAINING.md)."""
