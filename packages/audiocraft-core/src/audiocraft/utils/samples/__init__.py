"""Samples written by the generate stage (``audiocraft.utils.samples``); see `manager.SampleManager`.

Part of audiocraft-core (training layer).
"""
