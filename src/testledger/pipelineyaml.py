"""Reading pipeline YAML within bounds: size, nesting depth and alias expansion are limited before objects are built;
`read_document` gives the plain data with the line:column of every value, for `pipelinefile` to validate.

A pipeline document is untrusted (soon it arrives over HTTP). PyYAML composes aliases as shared
nodes, which is cheap; what explodes is walking them (a 526-byte "billion laughs" document expands
to 9**9 values) and merging them (`<<: [*a, *a]` doubles a mapping at every level). Nesting is
composed recursively, so 50,000 open brackets end in a RecursionError. Each is stopped here, at
the line and column where the limit is crossed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from testledger.pipelinefile import Path_, PipelineFileError, Problem

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


# -- reading with marks ---------------------------------------------------------------------------


class Marks:
    """Where each value (and each mapping key) of the document sits in the source."""

    def __init__(self) -> None:
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}

    def at(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(loader: BoundedLoader, node: yaml.Node, path: Path_, marks: Marks, reading: _Reading) -> Any:
    """Plain data from the node graph, within the value budget (an alias is built again at each use)."""
    first_visit = id(node) not in reading.budget.seen
    reading.budget.spend(node)
    marks.values.setdefault(path, _mark(node))
    if len(path) > MAX_DEPTH:  # aliases nest too: `&a [*a]` is a cycle, a chain of them is deep
        raise DocumentLimit(problem=f"the document nests deeper than {MAX_DEPTH} levels", problem_mark=node.start_mark)
    if isinstance(node, yaml.MappingNode):
        if first_visit:  # flattening merges in place: a second visit (an alias) would see merged keys twice
            _duplicate_keys(node, reading.problems)
        loader.flatten_mapping(node)
        data: dict[str, Any] = {}
        for key_node, value_node in node.value:  # merged keys first, the mapping's own after: own keys win
            if not isinstance(key_node, yaml.ScalarNode):
                reading.problems.append(Problem(*_mark(key_node), "a mapping key must be a plain value"))
                continue
            key = str(_scalar(loader, key_node, reading))
            marks.keys[(*path, key)] = _mark(key_node)
            data[key] = _build(loader, value_node, (*path, key), marks, reading)
        return data
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), marks, reading) for i, item in enumerate(node.value)]
    return _scalar(loader, node, reading)


@dataclass(slots=True)
class _Reading:
    problems: list[Problem]
    budget: ValueBudget


def _scalar(loader: BoundedLoader, node: yaml.Node, reading: _Reading) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an integer of 100,000 digits
        reading.problems.append(Problem(*_mark(node), f"cannot read this value: {exc}"))
        return None


def _duplicate_keys(node: yaml.MappingNode, problems: list[Problem]) -> None:
    """A key written twice in one mapping is a mistake; a key that overrides a merged (<<) one is not."""
    seen: set[str] = set()
    for key_node, _value in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                problems.append(Problem(*_mark(key_node), f"duplicate key '{key_node.value}'"))
            seen.add(key_node.value)


def read_document(text: str, *, filename: str) -> tuple[dict[str, Any], Marks]:
    """The document as plain data with its marks; YAML syntax errors and bombs become one `PipelineFileError`."""
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise PipelineFileError(filename, [Problem(1, 1, size_problem())])
    loader = BoundedLoader(text)
    reading = _Reading(problems=[], budget=ValueBudget())
    marks = Marks()
    try:
        root = loader.get_single_node()
        data = _build(loader, root, (), marks, reading) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = str(exc.problem) if isinstance(exc, DocumentLimit) else f"invalid YAML: {exc.problem or exc}"
        raise PipelineFileError(filename, [Problem(line, col, message)]) from None
    except yaml.YAMLError as exc:  # a reader error (a control character) has no problem_mark
        raise PipelineFileError(filename, [Problem(1, 1, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise PipelineFileError(filename, [Problem(1, 1, "a pipeline file is a mapping with key, name and cases")])
    if reading.problems:
        raise PipelineFileError(filename, reading.problems)
    return data, marks
