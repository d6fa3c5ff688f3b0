"""Dora grids of the compression (EnCodec) task: `dora grid compression.<name>` (see docs/COMPRESSION.md)."""
