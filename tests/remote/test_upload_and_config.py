"""What the client does without a server: gzip uploads as they stream, and a token kept out of sight."""

from __future__ import annotations

import gzip
import io
import logging
from pathlib import Path

import pytest

from testledger.errors import Unavailable
from testledger.remote.client import Remote
from testledger.remote.config import HalfConfigured, remote_config
from testledger.remote.upload import GzipStream, upload_parts
from testledger.settings import Settings

TOKEN = "tl_very-secret-token"


def test_a_report_is_compressed_as_it_is_read_and_the_same_bytes_each_time(tmp_path: Path) -> None:
    data = b"".join(b"<testcase name='t%d'/>\n" % n for n in range(200_000))  # about 4.6 MB
    pieces = []
    stream = GzipStream(io.BytesIO(data))
    while piece := stream.read(64 * 1024):
        assert len(piece) <= 64 * 1024
        pieces.append(piece)
    assert gzip.decompress(b"".join(pieces)) == data
    assert GzipStream(io.BytesIO(data)).read(10**9) == b"".join(pieces)  # deterministic: no timestamp


def test_a_gzip_report_is_sent_as_it_is(tmp_path: Path) -> None:
    packed = tmp_path / "junit.xml.gz"
    packed.write_bytes(gzip.compress(b"<testsuite/>"))
    plain = tmp_path / "junit.xml"
    plain.write_bytes(b"<testsuite/>")
    with upload_parts([packed, plain]) as parts:
        (_, (name, handle, kind)), (_, (_, stream, _)) = parts
        assert (name, kind, handle.read()) == ("junit.xml.gz", "application/gzip", packed.read_bytes())
        assert gzip.decompress(stream.read(10**6)) == b"<testsuite/>"


def test_the_token_appears_in_no_repr_message_or_log(caplog: pytest.LogCaptureFixture) -> None:
    config = remote_config(Settings(url="http://127.0.0.1:9/", token=TOKEN))
    assert config is not None and config.url == "http://127.0.0.1:9"
    remote = Remote(config)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Unavailable) as failed:
        remote.list_executions(workspace=None)
    shown = [repr(config), str(config), repr(remote), repr(remote.http), str(failed.value), caplog.text,
             repr(Settings(url="http://x", token=TOKEN))]
    assert not [text for text in shown if TOKEN in text]
    assert str(failed.value).startswith("cannot reach the testledger server at http://127.0.0.1:9 (")


@pytest.mark.parametrize(("url", "token", "problem"), [
    ("http://h", None, "TESTLEDGER_URL is set but TESTLEDGER_TOKEN is not"),
    (None, TOKEN, "TESTLEDGER_TOKEN is set but TESTLEDGER_URL is not"),
    ("ftp://h", TOKEN, "TESTLEDGER_URL must be an http(s) URL"),
    ("http://user:pw@h", TOKEN, "without credentials, got 'http://h'"),
])
def test_a_half_or_odd_configuration_names_the_fix(url: str | None, token: str | None, problem: str) -> None:
    with pytest.raises(HalfConfigured, match=problem.replace("(", r"\(").replace(")", r"\)")):
        remote_config(Settings(url=url, token=token))
    assert remote_config(Settings()) is None
