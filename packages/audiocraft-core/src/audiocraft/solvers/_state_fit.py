"""One message for a ``continue_from`` checkpoint that does not fit the solver's model.

Part of ``audiocraft-core``. Loading the state of another architecture makes torch raise one ``size mismatch``
line per parameter (a hundred for an LM) without naming the checkpoint. `summarize_load_error` turns that error
into one line naming the checkpoint, the counts and the first keys at fault. The check is torch's own (load
hooks, e.g. LoRA's plain-to-adapted key mapping, are honoured): this only rewrites the message.
"""

from __future__ import annotations

import re

_EXAMPLES = 3  # keys shown per kind of problem
_SIZE = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[(.*?)\]\) from checkpoint, "
    r"the shape in current model is torch\.Size\(\[(.*?)\]\)"
)
_KEYS = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)")


def _listed(what: str, items: list[str]) -> str:
    more = f", ... {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else ""
    return f"{len(items)} {what} ({'; '.join(items[:_EXAMPLES])}{more})"


def summarize_load_error(exc: RuntimeError, checkpoint: str) -> RuntimeError | None:
    """The short error for torch's ``Error(s) in loading state_dict`` ``exc``, or None for another error.

    Args:
        exc: the error raised by ``load_state_dict``.
        checkpoint: how to name the checkpoint, e.g. ``continue_from='1a2b3c4d' (/xps/1a2b3c4d/checkpoint.th)``.
    """
    text = str(exc)
    if "Error(s) in loading state_dict" not in text:
        return None
    shapes: list[str] = []
    missing: list[str] = []
    unexpected: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        size = _SIZE.match(line)
        if size:
            shapes.append(f"{size.group(1)}: checkpoint ({size.group(2)}) vs model ({size.group(3)})")
        keys = _KEYS.match(line)
        if keys:
            (missing if keys.group(1) == "Missing" else unexpected).extend(re.findall(r'"([^"]+)"', keys.group(2)))
    parts = [
        _listed(what, items)
        for what, items in (
            ("shape mismatch(es)", shapes),
            ("missing key(s)", missing),
            ("unexpected key(s)", unexpected),
        )
        if items
    ]
    return RuntimeError(
        f"{checkpoint} does not fit this solver's model (another architecture?): {'; '.join(parts)}. "
        "continue_from needs a checkpoint trained with the same model config; compare the model "
        "overrides of both runs"
    )
