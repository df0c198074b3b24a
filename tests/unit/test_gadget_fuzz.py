"""Mutated valid gadgets never raise anything but the project's error type."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucimage.errors import UcimageError
from ucimage.gadget import lay_out_volume, parse_gadget_yaml

from ..conftest import TESTDATA

CORPUS = {
    p.name: yaml.safe_load(p.read_text())
    for p in sorted((TESTDATA / "gadgets").glob("*.yaml"))
    if not p.name.startswith("INVALID")
}
TEXTS = {p.name: p.read_text() for p in sorted((TESTDATA / "gadgets").glob("*.yaml"))}

INTERESTING = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1M",
            "1G",
            "4G",
            "446",
            "447",
            "-1",
            "0x10",
            "1K",
            "M",
            "bare",
            "mbr",
            "0C",
            "0c",
            "83,0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "ZZ,C12A7328",
            "system-seed",
            "system-data",
            "system-boot",
            "system-save",
            "system-seed-null",
            "ubuntu-data",
            "writable",
            "ext4",
            "vfat",
            "vfat-16",
            "none",
            "gpt",
            "emmc",
            "grub",
            "piboot",
            "mbr+92",
            "+1",
            "mbr+",
            "$kernel:dtbs/x",
            "$kernel:",
            "../x",
            "99999999999999999999999",
            "1e3",
            "\x00",
            "é",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

KEYS = [
    "name",
    "filesystem-label",
    "offset",
    "offset-write",
    "min-size",
    "size",
    "type",
    "role",
    "id",
    "filesystem",
    "content",
    "update",
    "schema",
    "bootloader",
    "partial",
    "structure",
    "volumes",
    "defaults",
    "connections",
    "kernel-cmdline",
    "source",
    "target",
    "image",
    "unpack",
    "edition",
    "preserve",
    "plug",
    "slot",
]


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        out.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(CORPUS[draw(st.sampled_from(sorted(CORPUS)))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        nodes = _containers(doc, [])
        node = draw(st.sampled_from(nodes))
        action = draw(st.sampled_from(["set", "delete", "add", "duplicate", "shuffle"]))
        if isinstance(node, dict):
            keys = list(node)
            if action == "delete" and keys:
                del node[draw(st.sampled_from(keys))]
            elif action in ("set", "duplicate") and keys:
                node[draw(st.sampled_from(keys))] = draw(INTERESTING)
            else:
                node[draw(st.sampled_from(KEYS))] = draw(INTERESTING)
        elif isinstance(node, list):
            if action == "delete" and node:
                node.pop(draw(st.integers(min_value=0, max_value=len(node) - 1)))
            elif action == "duplicate" and node:
                node.append(copy.deepcopy(draw(st.sampled_from(node))))
            elif action == "shuffle" and node:
                node.reverse()
            else:
                node.append(draw(INTERESTING))
    return yaml.safe_dump(doc, allow_unicode=True)


def _check(text: str | bytes) -> None:
    try:
        info = parse_gadget_yaml(text)
        for volume in info.volumes.values():
            if volume.produces_image:
                for sector in (512, 4096):
                    lay = lay_out_volume(volume, sector_size=sector)
                    assert lay.size >= max((s.end for s in lay.structures), default=0)
                    lay.to_json()
    except UcimageError as exc:
        assert exc.message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_gadgets(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(TEXTS)),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=4),
)
def test_byte_mutations(name: str, position: int, junk: bytes) -> None:
    data = TEXTS[name].encode()
    position %= len(data)
    _check(data[:position] + junk + data[position + len(junk) :])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    _check(text)
