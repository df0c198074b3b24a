"""meta/snap.yaml parsing and validation, digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucimage.errors import UcimageError
from ucimage.snaps import (
    InvalidSnapYamlError,
    b64url_to_hex,
    digest_file,
    hex_to_b64url,
    parse_snap_yaml,
    validate_snap_name,
)

MINIMAL = "name: hello\nversion: '1.0'\n"


def test_minimal_defaults() -> None:
    info = parse_snap_yaml(MINIMAL)
    assert info.name == "hello"
    assert info.version == "1.0"
    assert info.type == "app"
    assert info.confinement == "strict"
    assert info.grade == "stable"
    assert info.architectures == ("all",)
    assert info.arch_label == "all"
    assert info.base is None


def test_full_document() -> None:
    info = parse_snap_yaml(
        "name: pc-kernel\nversion: 5.15-1\ntype: kernel\narchitectures: [amd64, arm64]\n"
        "confinement: devmode\ngrade: devel\nepoch: 1*\nprovenance: my-prov\n"
        "apps:\n  run: {command: bin/run}\n"
    )
    assert info.type == "kernel"
    assert info.architectures == ("amd64", "arm64")
    assert info.arch_label == "multi"
    assert info.supports_arch("arm64") and not info.supports_arch("s390x")
    assert info.epoch == "1*"
    assert info.provenance == "my-prov"
    assert info.apps == ("run",)
    assert info.to_json()["confinement"] == "devmode"


def test_numeric_version_keeps_literal_text() -> None:
    # Go reads the scalar text; PyYAML would turn 1.10 into the float 1.1
    assert parse_snap_yaml("name: abc\nversion: 1.10\n").version == "1.10"
    assert parse_snap_yaml("name: abc\nversion: 2\n").version == "2"


@pytest.mark.parametrize(
    "name",
    ["a", "-abc", "abc-", "a--b", "ABC", "a_b", "123", "x" * 41, "a/b", "..", "a.b", ""],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidSnapYamlError, match="snap name"):
        validate_snap_name(name)


@pytest.mark.parametrize("name", ["ab", "a1", "1a", "hello-world", "x" * 40, "pc-kernel"])
def test_good_names(name: str) -> None:
    assert validate_snap_name(name) == name


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("name: hello\n", "version"),
        ("name: hello\nversion: '-1'\n", "version"),
        ("name: hello\nversion: '1.'\n", "version"),
        ("name: hello\nversion: '" + "1" * 33 + "'\n", "32"),
        (MINIMAL + "type: daemon\n", "snap type"),
        (MINIMAL + "confinement: loose\n", "confinement"),
        (MINIMAL + "grade: beta\n", "grade"),
        (MINIMAL + "architectures: []\n", "architectures"),
        (MINIMAL + "architectures: [all, amd64]\n", "all"),
        (MINIMAL + "architectures: [AMD64]\n", "architecture"),
        (MINIMAL + "base: Core22\n", "base"),
        ("name: snapd\nversion: '1'\ntype: snapd\nbase: core22\n", "base"),
        (MINIMAL + "name: other\n", "duplicate"),
        ("- a\n- b\n", "mapping"),
        ("name: [unclosed\n", "parse"),
        (MINIMAL + "apps:\n  bad_app!: {}\n", "app name"),
        (MINIMAL + "summary: " + "s" * 129 + "\n", "summary"),
        (MINIMAL + "epoch: -1\n", "epoch"),
        ("name: hello\nversion: '1'\nprovenance: 'a b'\n", "provenance"),
    ],
)
def test_bad_documents(doc: str, match: str) -> None:
    with pytest.raises(InvalidSnapYamlError, match=match):
        parse_snap_yaml(doc)


def test_not_utf8() -> None:
    with pytest.raises(InvalidSnapYamlError, match="UTF-8"):
        parse_snap_yaml(b"name: \xff\xfe\n")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_parser_only_raises_our_error(text: str) -> None:
    try:
        parse_snap_yaml(text)
    except UcimageError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=5000))
def test_digest_matches_hashlib(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("d") / "f"
    path.write_bytes(data)
    hex_digest, b64, size = digest_file(path)
    assert hex_digest == hashlib.sha3_384(data).hexdigest()
    assert size == len(data)
    assert hex_to_b64url(hex_digest) == b64
    assert b64url_to_hex(b64) == hex_digest
    assert "=" not in b64


def test_fixture_digests_match_readme(testdata: Path) -> None:
    snaps = testdata / "store" / "fixtures" / "snaps"
    _, b64, size = digest_file(snaps / "hello-stub_7.snap")
    assert b64 == "mV4PKGBmdWWVLMC2mupgWpa-hpqX-_-t0tWKswcqF2L-YGXROt0fvlZyGrACvg8x"
    assert size == 4096
