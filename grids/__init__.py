"""Dora grids of AudioCraft, importable as ``audiocraft.grids.<task>.<name>`` (``dora grid <task>.<name>``).

Part of the ``audiocraft`` meta-package (a regular package: Dora's grid lookup needs ``__file__``). Each task
folder holds its grids and an explorer (see `audiocraft.grids._base_explorers.BaseExplorer`) that prints the
latest metrics of every XP of a grid as a table.
"""
