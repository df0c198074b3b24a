"""Assertion streams: ``decode_stream`` accepts exactly what snapd's ``asserts.Decoder``
accepts (asserts/asserts.go: headers up to ``\\n\\n``, ``body-length`` bytes then
``\\n\\n``, the signature up to the next ``\\n\\n`` or the end), and every writer emits
what snapd's ``Encoder`` emits (one blank line between, each ending in ``\\n``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucimage.assertions import AssertionFormatError, decode, decode_stream, encode_stream

FIXTURES = ("stubroot.account", "stubroot-root.account-key", "stubbrand.account-key")


@pytest.fixture(scope="module")
def parts(testdata: Path) -> list[bytes]:
    base = testdata / "store" / "fixtures" / "asserts"
    return [(base / name).read_bytes() for name in FIXTURES]


def test_encoder_form_round_trips(parts: list[bytes]) -> None:
    # each fixture file ends in exactly one "\n", as snapd writes them
    assert all(p.endswith(b"\n") and not p.endswith(b"\n\n") for p in parts)
    stream = b"\n".join(parts)
    got = decode_stream(stream)
    assert [a.encode() for a in got] == parts  # the signature keeps its "\n"
    assert encode_stream(got) == stream
    assert decode_stream(b"") == []


@pytest.mark.parametrize(
    "ending, ok",
    [
        (b"", True),  # the last signature ends the data ("sig")
        (b"\n", True),  # "sig\n": the Encoder's own output
        (b"\n\n", True),  # "sig\n\n": the signature reader stops at the blank line
        (b"\n\n\n", False),  # a stray "\n" left: unexpected EOF for snapd
        (b"\n\n\n\n", False),  # an empty header block
    ],
)
def test_stream_endings(parts: list[bytes], ending: bytes, ok: bool) -> None:
    stream = b"\n".join(parts).rstrip(b"\n") + ending
    if ok:
        got = decode_stream(stream)
        assert [a.encode().rstrip(b"\n") for a in got] == [p.rstrip(b"\n") for p in parts]
        assert encode_stream(got) == b"\n".join(parts)
    else:
        with pytest.raises(AssertionFormatError, match=r"end of the stream|missing ':'"):
            decode_stream(stream)


@pytest.mark.parametrize("where", [0, 1])
def test_extra_blank_line_between_assertions_is_refused(parts: list[bytes], where: int) -> None:
    """snapd reads the extra "\\n" as the start of the next headers: an empty entry."""
    seps = [b"\n", b"\n"]
    seps[where] = b"\n\n"
    stream = parts[0] + seps[0] + parts[1] + seps[1] + parts[2]
    with pytest.raises(AssertionFormatError, match=f"assertion {where + 2} of the stream"):
        decode_stream(stream)


@pytest.mark.parametrize("prefix", [b"\n", b"\n\n"])
def test_leading_blank_lines_are_refused(parts: list[bytes], prefix: bytes) -> None:
    with pytest.raises(AssertionFormatError):
        decode_stream(prefix + parts[0])


def test_body_must_be_followed_by_the_separator(parts: list[bytes]) -> None:
    key = parts[1]  # an account-key: it has a body
    head, rest = key.split(b"\n\n", 1)
    body_len = int(next(x for x in head.split(b"\n") if x.startswith(b"body-length:"))[12:])
    body, after = rest[:body_len], rest[body_len:]
    assert after.startswith(b"\n\n")
    with pytest.raises(AssertionFormatError, match="separator"):
        decode_stream(head + b"\n\n" + body + b"\n" + after[2:])
    with pytest.raises(AssertionFormatError, match="unexpected EOF"):
        decode_stream(head + b"\n\n" + body[:-1])


def test_store_root_assert_is_what_snapd_writes(tmp_path: Path) -> None:
    from ucimage.store.server import init_store

    root = init_store(tmp_path / "store", authority_id="streamtest", key_bits=1024)
    data = (root / "root.assert").read_bytes()
    got = decode_stream(data)
    assert [a.type for a in got] == ["account", "account-key"]
    assert encode_stream(got) == data
    assert b"\n\n\n" not in data and data.endswith(b"\n") and not data.endswith(b"\n\n")
    # and a single assertion file decodes alike either way
    assert decode(got[0].encode()).encode() == got[0].encode()
