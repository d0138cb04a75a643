"""Safe, streaming XML reading shared by every XML report parser: no DTDs, entities or network."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import IO, cast

from lxml import etree

from testledger.ingest.model import ReportParseError
from testledger.ingest.parsers.stream import peek
from testledger.ingest.prolog import read_prolog

Element = etree._Element

_FIRST_CHUNK = 64 * 1024
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UNNAMED_ERRORS = {"ERR_CDATA_NOT_FINISHED": "unclosed CDATA section"}


def local_name(tag: str) -> str:
    """``{namespace}name`` → ``name``; report formats are identified by local names only."""
    if tag[:1] == "{":
        return tag.rpartition("}")[2]
    return tag


def iter_xml(stream: IO[bytes], *, name: str, what: str) -> Iterator[tuple[str, Element]]:
    """Stream ``("start" | "end", element)`` events from an untrusted XML document.

    The parser never loads a DTD, never touches the network and never expands an entity
    into element text. A document whose DOCTYPE declares entities is refused outright:
    no report needs them, and they are how XXE and "billion laughs" payloads arrive.
    Later syntax errors surface as ``etree.XMLSyntaxError``, which :func:`guarded` turns
    into a ReportParseError via :func:`syntax_error`; not wrapping each event in another
    generator here keeps the per-case cost down.
    """
    head, source = peek(stream, _FIRST_CHUNK)
    if not head.strip():
        raise ReportParseError(f"empty document (expected {what})", file=name)
    has_doctype = _refuse_internal_subset(head, name=name)
    # lxml keeps a thread-wide error log; clearing it stops an earlier report's errors from
    # being quoted in this report's message.
    etree.clear_error_log()
    events = etree.iterparse(
        source,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        first = next(events)
    except etree.XMLSyntaxError as exc:
        raise syntax_error(exc, name=name) from None
    except StopIteration:
        raise ReportParseError(f"no XML element found (expected {what})", file=name) from None
    if not has_doctype:
        _refuse_unseen_doctype(first[1], name=name)
    return itertools.chain((first,), events)


def _refuse_internal_subset(head: bytes, *, name: str) -> bool:
    """Refuse a DOCTYPE with an internal subset (``<!DOCTYPE r [ ... ]>``) before libxml2 reads it.

    No report needs one, and every kind of declaration in it is an attack: entities (XXE,
    "billion laughs") and also ``<!ATTLIST testcase classname CDATA "x">``, whose default value
    libxml2 applies to every element even with DTD loading off, rewriting stored test identities.
    The prolog is read as text, so the refusal and its message do not depend on how a given
    libxml2 version reacts to entities. A bare ``<!DOCTYPE r SYSTEM "x.dtd">`` stays accepted:
    the external DTD is never loaded. Returns whether there is a (bare) DOCTYPE.
    """
    if b"<!DOCTYPE" not in head and not head.startswith(_UTF16_BOMS):
        return False  # nearly every report: no text to decode and walk (UTF-16 without a BOM: see below)
    text = _head_text(head)
    prolog = read_prolog(text)
    if prolog.doctype < 0:
        return False
    line = text.count("\n", 0, prolog.doctype) + 1
    declared = prolog.entities()
    if declared:
        raise ReportParseError(
            f"refused: the DOCTYPE declares entities ({', '.join(declared[:3])}); reports must not use entity "
            "declarations (external entities and entity expansion are never resolved)",
            file=name,
            line=line,
        )
    if not prolog.complete and len(head) >= _FIRST_CHUNK:
        raise ReportParseError(
            f"refused: the DOCTYPE does not end within the first {_FIRST_CHUNK // 1024} KiB of the report; "
            "remove the DOCTYPE (reports need none)",
            file=name,
            line=line,
        )
    if prolog.subset is not None:
        raise ReportParseError(
            "refused: the DOCTYPE has an internal subset ([...]); reports must not declare entities, "
            "elements or attribute defaults: remove the DOCTYPE (reports need none)",
            file=name,
            line=line,
        )
    return True


def _refuse_unseen_doctype(root: Element, *, name: str) -> None:
    """Refuse a DOCTYPE the parser found where the text scan saw none: after the first 64 KiB, or in an
    encoding the scan cannot read (UTF-16 without a byte order mark)."""
    if root.getroottree().docinfo.internalDTD is not None:
        raise ReportParseError(
            f"refused: the report has a DOCTYPE that cannot be checked for entity declarations before parsing "
            f"(it is not within the first {_FIRST_CHUNK // 1024} KiB, or UTF-16 has no byte order mark); "
            "remove the DOCTYPE (reports need none)",
            file=name,
            line=source_line(root),
        )


def _head_text(head: bytes) -> str:
    if head.startswith(_UTF16_BOMS):
        return head.decode("utf-16", errors="replace")
    # Byte for byte: the markup that matters is ASCII in every encoding libxml2 reads here.
    return head.decode("latin-1")


class ClosedElements:
    """Walk a report element by element as each one closes: ``(depth, local tag, element)``, with
    depth 0 for the root. The root is checked against `roots` when it opens and kept in `root`."""

    def __init__(self, stream: IO[bytes], *, name: str, what: str, roots: tuple[str, ...]) -> None:
        self.stream, self.name, self.what, self.roots = stream, name, what, roots
        self.root: Element | None = None

    def __iter__(self) -> Iterator[tuple[int, str, Element]]:
        depth = 0
        for event, elem in iter_xml(self.stream, name=self.name, what=self.what):
            if event == "start":
                if depth == 0:
                    expect_root(elem, self.roots, name=self.name, what=self.what)
                    self.root = elem
                depth += 1
                continue
            depth -= 1
            yield depth, local_name(elem.tag), elem

    def root_attribute(self, *names: str) -> str:
        """The first of the root's attributes that is set, or ''."""
        for attr in names:
            value = self.root.get(attr) if self.root is not None else None
            if value:
                return value
        return ""


def syntax_error(exc: etree.XMLSyntaxError, *, name: str) -> ReportParseError:
    """libxml2's complaint as a ReportParseError: file, line and a one-line reason."""
    message = exc.msg or "syntax error"
    line = exc.lineno or None
    last = exc.error_log.last_error if exc.error_log else None  # type: ignore[attr-defined]
    if last is not None and (line is None or message.startswith("no element found")):
        # libxml2 reports the real cause (an undefined entity, ...) in its log and then a
        # generic "no element found" at line 0; the logged error is the useful one.
        message = last.message
        line = last.line or line
    if last is not None and (message.startswith("Unregistered error message") or last.type_name in _UNNAMED_ERRORS):
        # libxml2 has no (or a garbled) text for some errors, e.g. an unclosed CDATA section.
        message = _UNNAMED_ERRORS.get(last.type_name, last.type_name.removeprefix("ERR_").lower())
    message = message.strip()
    where = message.rfind(", line ")
    if where > 0:
        message = message[:where].strip()
    # Some messages quote the offending input after a newline; the first line is the reason.
    message = message.split("\n", 1)[0].strip()
    if message == "no element found" or message.startswith("Document is empty"):
        return ReportParseError("empty or truncated document (expected XML)", file=name, line=line)
    return ReportParseError(f"not well-formed XML ({message})", file=name, line=line)


def expect_root(elem: Element, allowed: tuple[str, ...], *, name: str, what: str) -> str:
    """The root's local name, or a ReportParseError saying which roots a ``what`` document has."""
    tag = local_name(elem.tag)
    if tag not in allowed:
        wanted = " or ".join(f"<{root}>" for root in allowed)
        raise ReportParseError(
            f"not {what}: root element <{tag}> (expected {wanted})", file=name, line=source_line(elem)
        )
    return tag


def child_text(elem: Element, tag: str) -> str | None:
    """Text of the first direct child with local name ``tag``."""
    for child in elem:
        if isinstance(child.tag, str) and local_name(child.tag) == tag:
            return text_of(child)
    return None


def text_of(elem: Element) -> str | None:
    """All text inside ``elem`` (CDATA included); unresolved entity references stay literal."""
    if len(elem):
        return "".join(cast("Iterator[str]", elem.itertext()))
    return elem.text


def source_line(elem: Element) -> int | None:
    """The element's line in the document, when libxml2 recorded one."""
    line = elem.sourceline
    return line if isinstance(line, int) else None


def name_value_pairs(elem: Element, tag: str, into: dict[str, str] | None) -> dict[str, str] | None:
    """`<tag name=".." value=".."/>` children (NUnit properties, xUnit traits) added to `into`;
    the first value of a repeated name wins. Returns the dict, created only when there is a pair."""
    for item in elem:
        if isinstance(item.tag, str) and local_name(item.tag) == tag:
            key, value = item.get("name"), item.get("value")
            if key is not None and value is not None:
                into = {} if into is None else into
                into.setdefault(key, value)
    return into


def release(elem: Element) -> None:
    """Free a consumed element and its already-consumed siblings so memory stays flat."""
    elem.clear()
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]
