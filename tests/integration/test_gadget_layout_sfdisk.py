"""Every corpus layout is a partition table ``sfdisk`` accepts as is.

The layout plan is handed to util-linux ``sfdisk`` on a sparse file of the
planned image size (an independent implementation of GPT/MBR rules: first and
last usable LBA, overlaps, alignment of nothing); ``sfdisk --json`` must then
report exactly the planned starts, sizes, types, names and bootable flags.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ucimage.gadget import VolumeLayout, lay_out_volume, load_gadget
from ucimage.run import run

from ..conftest import TESTDATA

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk not installed"),
]

GADGETS = TESTDATA / "gadgets"


def _volumes() -> list[tuple[str, str, int]]:
    out = []
    for path in sorted(GADGETS.glob("*.yaml")):
        if path.name.startswith("INVALID"):
            continue
        for name, volume in load_gadget(path).volumes.items():
            if volume.produces_image:
                out.append((path.name, name, 512))
    # sfdisk 2.38 reads regular files with 512-byte sectors only (4K: unit tests)
    return out


def sfdisk_script(layout: VolumeLayout) -> str:
    lines = [
        f"label: {'gpt' if layout.schema == 'gpt' else 'dos'}",
        f"sector-size: {layout.sector_size}",
        "unit: sectors",
    ]
    if layout.schema == "gpt":
        # the GPT minimum; sfdisk would otherwise keep the first MiB free
        lines.append(f"first-lba: {2 + 16384 // layout.sector_size}")
    if layout.schema == "mbr":
        lines.append("label-id: 0x12345678")
    for p in layout.partitions:
        fields = [f"start={p.start_sector}", f"size={p.size_sectors}", f"type={p.partition_type}"]
        if layout.schema == "gpt" and p.name:
            fields.append(f'name="{p.name}"')
        if p.bootable:
            fields.append("bootable")
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("gadget", "volume", "sector"), _volumes())
def test_sfdisk_accepts_layout(tmp_path: Path, gadget: str, volume: str, sector: int) -> None:
    layout = lay_out_volume(load_gadget(GADGETS / gadget).volumes[volume], sector_size=sector)
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(layout.size)
    run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "never", image],
        input=sfdisk_script(layout).encode(),
    )
    table = json.loads(run(["sfdisk", "--json", image]).stdout)["partitiontable"]
    assert table["label"] == ("gpt" if layout.schema == "gpt" else "dos")
    assert table.get("sectorsize", 512) == sector
    got = table.get("partitions", [])
    assert len(got) == len(layout.partitions)
    for entry, p in zip(got, layout.partitions, strict=True):
        assert entry["start"] == p.start_sector == p.start // sector
        assert entry["size"] == p.size_sectors
        assert p.partition_type is not None
        if layout.schema == "gpt":
            assert entry["type"] == p.partition_type
            assert entry.get("name", "") == p.name
        else:
            assert int(entry["type"], 16) == int(p.partition_type, 16)
            assert bool(entry.get("bootable", False)) == p.bootable
    if layout.schema == "gpt":
        # the backup table (33 sectors) fits after the last partition
        assert (table["lastlba"] + 1 + 33) * sector == layout.size
        last_end = max((p.start_sector + p.size_sectors for p in layout.partitions), default=0)
        assert last_end - 1 <= table["lastlba"]
