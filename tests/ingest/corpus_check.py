"""Acceptance check over the shared report corpus: parse every MANIFEST file and compare totals.

Run: ``python tests/ingest/corpus_check.py [--corpus DIR] [--show-errors]``. Not a pytest module
(the corpus lives outside the repository); it prints a table per format and every mismatch.

Comparison rules (see the corpus README):

- ``totals``: tests/passed/failed/errors/skipped equal the row. When the errors cell is blank
  or the notes say "independent count differs: t/p/f/e/s", the robust check (tests, passed,
  skipped and failed+errors) is used, and the independent count itself is also accepted,
  because the README lets either tool's status mapping stand for such rows.
- ``ambiguous``: no error, and the raw reading, the merged reading (identical suite +
  classname + name collapsed into one result) or the independent count matches.
- ``reject``: a ReportParseError. ``reject-or-totals``: a ReportParseError or the totals; for
  the NUnit XXE probes the payload of ``NUnit-sec1752-file.txt`` must appear in no case text.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from testledger.ingest.model import ParsedCase, ReportParseError
from testledger.ingest.parsers import parse_report

DEFAULT_CORPUS = Path("/work/shared/corpus/reports")
STATUSES = ("passed", "failed", "error", "skipped")
XXE_PAYLOAD_FILE = "other/enricomi-publish-unit-test-result-action/nunit/nunit3/jenkins/NUnit-sec1752-file.txt"
_INDEPENDENT = re.compile(r"independent count differs: (\d+)/(\d+)/(\d+)/(\d+)/(\d+)")

Totals = tuple[int, int, int, int, int]


@dataclass
class Outcome:
    path: str
    format: str
    expect: str
    expected: str
    got: str
    ok: bool
    error: str | None = None
    how: str = ""


@dataclass
class Row:
    path: str
    format: str
    expect: str
    cells: list[str]
    notes: str
    readings: list[Totals] = field(default_factory=list)


def totals(cases: list[ParsedCase]) -> Totals:
    counts = dict.fromkeys(STATUSES, 0)
    for case in cases:
        counts[case.status] += 1
    return (len(cases), counts["passed"], counts["failed"], counts["error"], counts["skipped"])


def merged(cases: list[ParsedCase], *, any_pass: bool) -> Totals:
    """Collapse identical (suite, classname, name): last status, or passed if any try passed."""
    last: dict[tuple[str, str, str], str] = {}
    passed: set[tuple[str, str, str]] = set()
    for case in cases:
        key = (case.suite, case.classname, case.name)
        last[key] = case.status
        if case.status == "passed":
            passed.add(key)
    statuses = ["passed" if any_pass and key in passed else status for key, status in last.items()]
    counts = {status: statuses.count(status) for status in STATUSES}
    return (len(statuses), counts["passed"], counts["failed"], counts["error"], counts["skipped"])


def matches(expected: list[str], got: Totals, *, robust: bool) -> bool:
    if "" in expected[:3] or expected[4] == "":
        return False
    tests, passed, failed, skipped = (int(expected[i]) for i in (0, 1, 2, 4))
    if expected[3] == "":
        return (tests, passed, failed, skipped) == (got[0], got[1], got[2] + got[3], got[4])
    errors = int(expected[3])
    if robust:
        return (tests, passed, failed + errors, skipped) == (got[0], got[1], got[2] + got[3], got[4])
    return (tests, passed, failed, errors, skipped) == got


def judge(row: Row, cases: list[ParsedCase] | None, error: str | None, payload: str) -> str:
    """How the row matched ("exact", "rejected", or the alternate reading used); "" when it did not."""
    clean_rejection = error is not None and not error.startswith("CRASH")
    if row.expect == "reject" or cases is None:
        may_reject = row.expect in ("reject", "reject-or-totals")
        return "rejected" if cases is None and clean_rejection and may_reject else ""
    if "NUnit-sec1752" in row.path and any(payload in _texts(case) for case in cases):
        return ""
    raw = totals(cases)
    if matches(row.cells, raw, robust=False):
        return "exact"
    independent = [list(m) for m in _INDEPENDENT.findall(row.notes)]
    lenient = bool(independent) or row.expect == "ambiguous"
    if lenient and matches(row.cells, raw, robust=True):
        return "failed+errors"
    if any(matches(other, raw, robust=False) for other in independent):
        return "independent count"
    if row.expect == "ambiguous":
        for any_pass in (False, True):
            if matches(row.cells, merged(cases, any_pass=any_pass), robust=True):
                return "merged reading"
    return ""


def _texts(case: ParsedCase) -> str:
    parts = [case.message, case.stack_trace, case.stdout, case.stderr, case.name]
    return "\n".join(part for part in parts if part)


def check_file(corpus: Path, row: Row, payload: str) -> Outcome:
    cases: list[ParsedCase] | None = None
    error: str | None = None
    try:
        with (corpus / row.path).open("rb") as stream:
            _info, cases = parse_report(stream, name=row.path)
    except ReportParseError as exc:
        error = str(exc)
    except Exception as exc:  # a crash is exactly what this check exists to report
        error = f"CRASH {type(exc).__name__}: {exc}"
    got = error if cases is None else "/".join(str(n) for n in totals(cases))
    how = judge(row, cases, error, payload)
    return Outcome(row.path, row.format, row.expect, "/".join(row.cells), got or "", bool(how), error, how)


def read_manifest(corpus: Path) -> list[Row]:
    with (corpus / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            Row(
                path=item["relative_path"],
                format=item["format"],
                expect=item["expect"],
                cells=[item[k] for k in ("tests", "passed", "failed", "errors", "skipped")],
                notes=item["notes"],
            )
            for item in reader
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--show-errors", action="store_true", help="print every rejection message")
    parser.add_argument("--show-alternates", action="store_true", help="print rows not matched exactly")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    payload = (corpus / XXE_PAYLOAD_FILE).read_text().strip()
    started = time.perf_counter()
    outcomes = [check_file(corpus, row, payload) for row in read_manifest(corpus)]
    elapsed = time.perf_counter() - started
    by_format: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_format[outcome.format].append(outcome)
    print(f"{'format':<16}{'files':>7}{'matched':>9}{'mismatched':>12}{'via alternate':>15}")
    for fmt, items in [*sorted(by_format.items(), key=lambda kv: -len(kv[1])), ("total", outcomes)]:
        good = sum(o.ok for o in items)
        alternate = sum(o.how not in ("", "exact", "rejected") for o in items)
        print(f"{fmt:<16}{len(items):>7}{good:>9}{len(items) - good:>12}{alternate:>15}")
    print(f"({elapsed:.1f} s)")
    bad = [o for o in outcomes if not o.ok]
    if bad:
        print("\nmismatches (expected tests/passed/failed/errors/skipped vs got):")
        for o in bad:
            print(f"  {o.path} [{o.expect}] expected {o.expected or '-'} got {o.got}")
    if args.show_alternates:
        print("\nmatched through an alternate reading allowed by the README:")
        for o in outcomes:
            if o.how not in ("", "exact", "rejected"):
                print(f"  {o.path} [{o.expect}] expected {o.expected} got {o.got} ({o.how})")
    if args.show_errors:
        print("\nrejections:")
        for o in outcomes:
            if o.error:
                print(f"  [{o.expect}] {o.error}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
