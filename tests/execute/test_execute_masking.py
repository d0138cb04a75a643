"""Masking secrets in streams cut anywhere, including through the middle of a secret."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from testledger.execute.masking import Masker

SECRETS = ["s3cret", "another-longer-secret", "s3"]


@given(
    st.lists(st.sampled_from([b"abc ", b"s3cret", b"another-longer-secret", b"s3", b"\n", b"x" * 7]), max_size=30),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=30),
)
def test_stream_masking_equals_masking_the_whole(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    masker = Masker(SECRETS)
    stream = masker.stream()
    out, position, i = b"", 0, 0
    while position < len(data):
        size = cuts[i % len(cuts)]
        out += stream.feed(data[position:position + size])
        position, i = position + size, i + 1
    out += stream.close()
    assert out == masker.bytes(data)
    assert b"s3cret" not in out and b"another-longer-secret" not in out


def test_text_and_nested_data() -> None:
    masker = Masker(["tok"])
    assert masker.text("a tok b") == "a *** b"
    assert masker.data({"x": ["tok", 1], "y": "tokens"}) == {"x": ["***", 1], "y": "***ens"}
    assert not Masker([]) and Masker([]).text("tok") == "tok"
