"""mkdocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

Some docstrings use Sphinx roles (``:class:`X```, ``:func:`f```): Markdown renders the role name as text before the
code span. The hook drops the role name, so the reference reads as the code span it is.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    """Drop the Sphinx role names that precede code spans in a rendered page."""
    return _ROLE.sub("", html)
