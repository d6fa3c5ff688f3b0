"""Minimal AudioGen grid (`dora grid audiogen.debug --dry_run --init`): the XPs of ``musicgen.debug`` on
``solver=audiogen/debug``."""

from ..musicgen._explorers import LMExplorer
from ..musicgen.debug import debug_grid


@LMExplorer
def explorer(launcher):
    debug_grid(launcher, "audiogen/debug")
