"""Reading pipeline YAML within bounds: size, nesting depth and alias expansion are limited before objects are built.

A pipeline document is untrusted (soon it arrives over HTTP). PyYAML composes aliases as shared
nodes, which is cheap; what explodes is walking them (a 526-byte "billion laughs" document expands
to 9**9 values) and merging them (`<<: [*a, *a]` doubles a mapping at every level). Nesting is
composed recursively, so 50,000 open brackets end in a RecursionError. Each is stopped here, at
the line and column where the limit is crossed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

#: The largest pipeline document read, in bytes.
MAX_DOCUMENT_BYTES = 1 << 20
#: How deep mappings and sequences may nest.
MAX_DEPTH = 64
#: How many values (scalars, mappings, sequences) the document may hold once aliases and merge
#: keys are expanded: far above any real pipeline, far below a bomb.
MAX_VALUES = 100_000


class DocumentLimit(yaml.MarkedYAMLError):
    """A document that crosses one of the limits above; `problem` says which and what to do."""


def size_problem() -> str:
    return (f"the document is larger than {MAX_DOCUMENT_BYTES:,} bytes, the limit "
            "(split the pipeline, or move large bodies into files)")


def read_pipeline_text(path: Path) -> str:
    """A pipeline file's text, reading no more than one byte past the size limit (which
    `parse_pipeline` then refuses with the file's name and position)."""
    with path.open("rb") as stream:
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
    return data.decode("utf-8", "replace" if len(data) > MAX_DOCUMENT_BYTES else "strict")


class _Limits:
    """Refuses nesting past `MAX_DEPTH` while composing, and merges past `MAX_VALUES` while flattening."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise DocumentLimit(problem=f"the document nests deeper than {MAX_DEPTH} levels", problem_mark=mark)
            return super().compose_node(parent, index)  # type: ignore[misc,no-any-return]
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # PyYAML calls this recursively through `self`, so every merged level is checked as it is built.
        super().flatten_mapping(node)  # type: ignore[misc]
        if len(node.value) > MAX_VALUES:
            raise DocumentLimit(
                problem=f"merge keys (<<) expand this mapping past {MAX_VALUES:,} entries; write it out instead",
                problem_mark=node.start_mark,
            )


# Events come from libyaml when PyYAML has it (six times faster than the pure-Python scanner on a
# large pipeline); nodes are always composed in Python, where the limits above apply.
try:
    from yaml._yaml import CParser as _Events
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser as _Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Events(Reader, Scanner, _Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _Parser.__init__(self)


class BoundedLoader(_Limits, Composer, SafeConstructor, Resolver, _Events):
    """`yaml.SafeLoader`'s constructor and resolver over bounded composition."""

    def __init__(self, stream: str) -> None:
        _Events.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class ValueBudget:
    """Counts the values built from the node graph; an alias counts again each time it is used."""

    def __init__(self) -> None:
        self.used = 0
        self.seen: set[int] = set()
        self.aliased = False

    def spend(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self.seen:
                self.aliased = True
            self.seen.add(id(node))
        self.used += 1
        if self.used > MAX_VALUES:
            what = "aliases (*name) expand the document" if self.aliased else "the document holds"
            raise DocumentLimit(
                problem=f"{what} past {MAX_VALUES:,} values; write fewer values or use fewer aliases",
                problem_mark=node.start_mark,
            )
