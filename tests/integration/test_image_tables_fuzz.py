"""Random partition tables written by us, read back by sfdisk (hypothesis)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucimage.image.partition_table import (
    TableEntry,
    gpt_usable_range,
    write_gpt,
    write_mbr,
)

pytestmark = pytest.mark.integration

GPT_TYPES = [
    "21686148-6449-6E6F-744E-656564454649",
    "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
]
SFDISK_ENV = {**os.environ, "PATH": os.environ.get("PATH", "/usr/bin") + ":/usr/sbin:/sbin"}


def sfdisk(image: Path) -> dict[str, object]:
    out = subprocess.run(
        ["sfdisk", "--json", image], capture_output=True, text=True, check=True, env=SFDISK_ENV
    ).stdout
    table: dict[str, object] = json.loads(out)["partitiontable"]
    return table


@st.composite
def layouts(draw: st.DrawFn, schema: str) -> tuple[int, list[TableEntry]]:
    total = draw(st.integers(min_value=4096, max_value=1 << 22))
    first, last = gpt_usable_range(total, 512) if schema == "gpt" else (1, total - 1)
    count = draw(st.integers(min_value=0, max_value=4 if schema == "mbr" else 10))
    cuts = sorted(draw(st.lists(st.integers(first, last), min_size=2 * count,
                                max_size=2 * count, unique=True)))  # fmt: skip
    entries = []
    for i in range(count):
        start, end = cuts[2 * i], cuts[2 * i + 1]
        if schema == "gpt":
            name = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                                max_size=12))  # fmt: skip
            kind = draw(st.sampled_from(GPT_TYPES))
            guid = uuid.UUID(int=draw(st.integers(1, (1 << 128) - 1)), version=4)
            entries.append(TableEntry(i + 1, start, end - start + 1, kind, name, guid))
        else:
            kind = draw(st.sampled_from(["0C", "83", "EF", "0B", "82"]))
            entries.append(TableEntry(i + 1, start, end - start + 1, kind,
                                      bootable=draw(st.booleans())))  # fmt: skip
    return total, entries


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=layouts("gpt"))
def test_random_gpt_read_by_sfdisk(tmp_path: Path, layout: tuple[int, list[TableEntry]]) -> None:
    total, entries = layout
    image = tmp_path / "gpt.img"
    with open(image, "wb") as f:
        f.truncate(total * 512)
        write_gpt(f.fileno(), total, 512, uuid.UUID(int=7, version=4), entries)
    table = sfdisk(image)
    assert table["label"] == "gpt"
    got = table.get("partitions", [])
    assert isinstance(got, list) and len(got) == len(entries)
    for entry, part in zip(entries, got, strict=True):
        assert (part["start"], part["size"]) == (entry.first_lba, entry.sectors)
        assert part["type"] == entry.type
        assert part["uuid"] == str(entry.guid).upper()
        assert part.get("name", "") == entry.name


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=layouts("mbr"))
def test_random_mbr_read_by_sfdisk(tmp_path: Path, layout: tuple[int, list[TableEntry]]) -> None:
    total, entries = layout
    image = tmp_path / "mbr.img"
    with open(image, "wb") as f:
        f.truncate(total * 512)
        write_mbr(f.fileno(), total, 512, 0x1234ABCD, entries)
    table = sfdisk(image)
    assert table["label"] == "dos" and table["id"] == "0x1234abcd"
    got = table.get("partitions", [])
    assert isinstance(got, list) and len(got) == len(entries)
    for entry, part in zip(entries, got, strict=True):
        assert (part["start"], part["size"]) == (entry.first_lba, entry.sectors)
        assert int(part["type"], 16) == int(entry.type, 16)
        assert part.get("bootable", False) == entry.bootable
