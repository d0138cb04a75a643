"""The parser registry: one parser per format id, each module imported only when its format is parsed."""

from __future__ import annotations

import subprocess
import sys

from testledger.ingest.parsers import PARSERS, get_parser


def test_every_format_id_names_the_parser_of_that_format() -> None:
    assert len(PARSERS) == 19
    assert {format_id: PARSERS[format_id].format for format_id in PARSERS} == {f: f for f in PARSERS}
    assert get_parser("junit") is get_parser("junit")


def test_parsing_junit_imports_no_other_formats_parser() -> None:
    script = (
        "import io, sys\n"
        "from testledger.ingest.parsers import parse_report\n"
        "info, cases = parse_report(io.BytesIO(b'<testsuite><testcase name=\"a\"/></testsuite>'), name='r.xml')\n"
        "print(info.format, len(cases), sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "      if m.startswith('testledger.ingest.parsers.') and m.rsplit('.', 1)[1] in\n"
        "      ('trx', 'nunit', 'ctrf', 'tap', 'gotest', 'cucumber', 'js_reporters', 'rspec', 'dart', 'native_xml',\n"
        "       'xunit2')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "junit 1 []"
