"""An XML document's prolog read as text: where its DOCTYPE is, whether it has an internal subset,
and the root element's name. Format detection and the safe XML reader both use it, so that the
decision to refuse a DOCTYPE never depends on what a given libxml2 version does with one."""

from __future__ import annotations

import re
from typing import NamedTuple

_ROOT_NAME = re.compile(r"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_ENTITY = re.compile(r"<!ENTITY\s+(%\s*)?([^\s\"'%>]+)")


class Prolog(NamedTuple):
    """What the prolog of a document's first bytes holds.

    ``doctype`` is the offset of ``<!DOCTYPE`` (-1 without one); ``subset`` the text between its
    ``[`` and ``]`` (None when the DOCTYPE has no internal subset); ``complete`` is False when the
    DOCTYPE does not end within the text; ``root`` the first element's local name, None when the
    text ends before it or holds something that is not XML markup.
    """

    root: str | None
    doctype: int = -1
    subset: str | None = None
    complete: bool = True

    def entities(self) -> list[str]:
        """Names of the entities the internal subset declares (``%name`` for parameter entities)."""
        return [("%" if percent else "") + entity for percent, entity in _ENTITY.findall(self.subset or "")]


def read_prolog(text: str) -> Prolog:
    """Walk the prolog of ``text``: the declaration, comments, processing instructions, a DOCTYPE."""
    pos = 0
    doctype, subset = -1, None
    while True:
        start = text.find("<", pos)
        if start < 0:
            return Prolog(None, doctype, subset)
        if text.startswith("<?", start):
            pos = _after(text, "?>", start)
        elif text.startswith("<!--", start):
            pos = _after(text, "-->", start)
        elif text.startswith("<!DOCTYPE", start):
            doctype = start
            pos, subset = _doctype(text, start + len("<!DOCTYPE"))
            if pos < 0:
                return Prolog(None, doctype, subset, complete=False)
        elif text.startswith("<!", start):
            return Prolog(None, doctype, subset)
        else:
            match = _ROOT_NAME.match(text, start)
            return Prolog(match.group(2) if match else None, doctype, subset)
        if pos < 0:
            return Prolog(None, doctype, subset)


def _after(text: str, end: str, start: int) -> int:
    found = text.find(end, start)
    return -1 if found < 0 else found + len(end)


def _doctype(text: str, pos: int) -> tuple[int, str | None]:
    """From just after ``<!DOCTYPE``: the offset after its ``>`` (-1 when not in ``text``) and its
    internal subset. Quoted strings and comments may hold ``[``, ``]`` and ``>``; they are skipped."""
    subset_start = -1
    end = len(text)
    while pos < end:
        char = text[pos]
        if char in "\"'":
            close = text.find(char, pos + 1)
            if close < 0:
                break
            pos = close + 1
            continue
        if subset_start >= 0 and text.startswith("<!--", pos):
            pos = _after(text, "-->", pos)
            if pos < 0:
                break
            continue
        if char == "[" and subset_start < 0:
            subset_start = pos + 1
        elif char == "]" and subset_start >= 0:
            close = text.find(">", pos)
            if close < 0:
                break
            return close + 1, text[subset_start:pos]
        elif char == ">" and subset_start < 0:
            return pos + 1, None
        pos += 1
    return -1, None if subset_start < 0 else text[subset_start:]
