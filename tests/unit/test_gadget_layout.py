"""Layout plans of the corpus gadgets against the README's expected layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ucimage.gadget import (
    GadgetError,
    VolumeLayout,
    lay_out_volume,
    load_gadget,
    parse_gadget_yaml,
    system_data_size_for_content,
)

from ..conftest import TESTDATA

GADGETS = TESTDATA / "gadgets"
M = 1 << 20
G = 1 << 30
LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_GUID = "21686148-6449-6E6F-744E-656564454649"
GPT512 = 67 * 512  # primary + backup GPT, ubuntu-image's partition-table size

# name, start, size, partition number, partition type ("" = not in the table)
Row = tuple[str, int, int, int | None, str | None]


def layout(name: str, volume: str, **kw: int) -> VolumeLayout:
    info = load_gadget(GADGETS / name)
    return lay_out_volume(info.volumes[volume], **kw)  # type: ignore[arg-type]


def rows(lay: VolumeLayout) -> list[Row]:
    return [(s.name, s.start, s.size, s.partition_number, s.partition_type) for s in lay.structures]


UC20_PC = [
    ("mbr", 0, 440, None, None),
    ("BIOS Boot", 1 * M, 1 * M, 1, BIOS_GUID),
    ("ubuntu-seed", 2 * M, 1200 * M, 2, ESP_GUID),
    ("ubuntu-boot", 1202 * M, 750 * M, None, LINUX_GUID),
    ("ubuntu-save", 1952 * M, 16 * M, None, LINUX_GUID),
    ("ubuntu-data", 1968 * M, 1 * G, None, LINUX_GUID),
]
UC22_PC = [
    *UC20_PC[:4],
    ("ubuntu-save", 1952 * M, 32 * M, None, LINUX_GUID),
    ("ubuntu-data", 1984 * M, 1 * G, None, LINUX_GUID),
]
PC16 = [
    ("mbr", 0, 440, None, None),
    ("BIOS Boot", 1 * M, 1 * M, 1, BIOS_GUID),
    ("EFI System", 2 * M, 50 * M, 2, ESP_GUID),
    ("writable", 52 * M, 8 * M, 3, LINUX_GUID),
]
DRAGON_TYPES = [
    "DEA0BA2C-CBDD-4805-B4F9-F428251C3E98",
    "098DF793-D712-413D-9D4E-89D711772228",
    "A053AA7F-40B8-4B1C-BA08-2F68AC71A4F4",
    "E1A6A689-0C8D-4CC6-B4E8-55A4320FBD8A",
    "303E6AC3-AF15-4C54-9E9B-D9A8FBECF401",
    "400FFDCD-22E0-47E7-9A23-F16ED9382388",
    "20117F86-E985-4357-B9EE-374BC1D8487D",
]

LK = [
    ("cdt", 17408, 2048, "A19F205F-CCD8-4B6D-8F1E-2D9BC24CFFB1"),
    ("sbl1", 19456, M, "DEA0BA2C-CBDD-4805-B4F9-F428251C3E98"),
    ("rpm", 1068032, M, "098DF793-D712-413D-9D4E-89D711772228"),
    ("tz", 2116608, M, "A053AA7F-40B8-4B1C-BA08-2F68AC71A4F4"),
    ("hyp", 3165184, M, "E1A6A689-0C8D-4CC6-B4E8-55A4320FBD8A"),
    ("sec", 5242880, M, "303E6AC3-AF15-4C54-9E9B-D9A8FBECF401"),
    ("aboot", 6291456, 2 * M, "400FFDCD-22E0-47E7-9A23-F16ED9382388"),
    *[
        (n, off, 131072, "B214D5E4-D442-45E6-B8C6-01BDCD82D396")
        for n, off in [
            ("snaprecoverysel", 8388608),
            ("snaprecoveryselbak", 8519680),
            ("snapbootsel", 8650752),
            ("snapbootselbak", 8781824),
        ]
    ],
    *[
        (n, off, 30 * M, "20117F86-E985-4357-B9EE-374BC1D8487D")
        for n, off in [
            ("boot_ra", 9437184),
            ("boot_rb", 40894464),
            ("boot_a", 72351744),
            ("boot_b", 103809024),
        ]
    ],
]

EXPECTED: dict[tuple[str, str], tuple[list[Row], int]] = {
    ("pc-amd64-uc16.yaml", "pc"): (PC16, 60 * M + GPT512),
    ("pc-amd64-uc18.yaml", "pc"): (PC16, 60 * M + GPT512),
    ("pc-amd64-uc20.yaml", "pc"): (UC20_PC, 2992 * M + GPT512),
    ("pc-amd64-uc22-minsize.yaml", "pc"): (UC22_PC, 3008 * M + GPT512),
    ("pc-amd64-uc24.yaml", "pc"): (UC22_PC, 3008 * M + GPT512),
    ("pc-arm64-uc22-no-bios.yaml", "pc"): (
        [
            ("ubuntu-seed", 1 * M, 1200 * M, 1, ESP_GUID),
            ("ubuntu-boot", 1201 * M, 750 * M, None, LINUX_GUID),
            ("ubuntu-save", 1951 * M, 32 * M, None, LINUX_GUID),
            ("ubuntu-data", 1983 * M, 1 * G, None, LINUX_GUID),
        ],
        3007 * M + GPT512,
    ),
    ("pc-classic-2310-system-seed-null.yaml", "pc"): (
        [
            ("EFI System partition", 1 * M, 750 * M, 1, ESP_GUID),
            ("ubuntu-boot", 751 * M, 750 * M, 2, LINUX_GUID),
            ("ubuntu-save", 1501 * M, 32 * M, 3, LINUX_GUID),
            ("ubuntu-data", 1533 * M, 4 * G, 4, LINUX_GUID),
        ],
        5629 * M + GPT512,
    ),
    ("pi-armhf-uc18-kernel-refs.yaml", "pi"): (
        [("", 1 * M, 256 * M, 1, "0C"), ("writable", 257 * M, 8 * M, 2, "83")],
        265 * M + 512,
    ),
    ("pi-arm64-uc20-mbr-hybrid-types.yaml", "pi"): (
        [
            ("ubuntu-seed", 1 * M, 1200 * M, 1, "0C"),
            ("ubuntu-boot", 1201 * M, 750 * M, None, "0C"),
            ("ubuntu-save", 1951 * M, 16 * M, None, "83"),
            ("ubuntu-data", 1967 * M, 1500 * M, None, "83"),
        ],
        3467 * M + 512,
    ),
    ("pi-uc24-piboot.yaml", "pi"): (
        [
            ("ubuntu-seed", 1 * M, 1200 * M, 1, "0C"),
            ("ubuntu-boot", 1201 * M, 750 * M, None, "0C"),
            ("ubuntu-save", 1951 * M, 32 * M, None, "83"),
            ("ubuntu-data", 1983 * M, 1500 * M, None, "83"),
        ],
        3483 * M + 512,
    ),
    ("pi3-uc16-implicit-data.yaml", "pi3"): (
        [("", 2048 * 512, 128 * M, 1, "0C"), ("writable", 129 * M, 8 * M, 2, "83")],
        137 * M + 512,
    ),
    ("beaglebone-mbr-bare-offsets.yaml", "disk"): (
        [
            ("mlo", 131072, 131072, None, None),
            ("u-boot", 393216, 786432, None, None),
            ("system-boot", 2304 * 512, 128 * M, 1, "0C"),
            ("writable", 2304 * 512 + 128 * M, 8 * M, 2, "83"),
        ],
        2304 * 512 + 136 * M + 512,
    ),
    ("dragonboard-gpt-raw-partitions.yaml", "dragonboard"): (
        [
            *[
                (n, sector * 512, (2 if n == "aboot" else 1) * M, i + 1, DRAGON_TYPES[i])
                for i, (n, sector) in enumerate(
                    [
                        ("sbl1", 2048),
                        ("rpm", 4096),
                        ("tz", 6144),
                        ("hyp", 8192),
                        ("sec", 10240),
                        ("aboot", 12288),
                        ("boot", 16384),
                    ]
                )
            ],
            ("system-boot", 18432 * 512, 128 * M, 8, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"),
            ("writable", 18432 * 512 + 128 * M, 8 * M, 9, LINUX_GUID),
        ],
        9 * M + 136 * M + GPT512,
    ),
    ("imx-uc20-gpt-bare-ext4-seed.yaml", "emmc"): (
        [
            ("", 33792, 10451456, None, None),
            ("ubuntu-seed", 10485760, 500 * M, 1, LINUX_GUID),
            ("ubuntu-boot", 534773760, 200 * M, None, LINUX_GUID),
            ("ubuntu-save", 744488960, 16 * M, None, LINUX_GUID),
            ("ubuntu-data", 761266176, 1000 * M, None, LINUX_GUID),
        ],
        761266176 + 1000 * M + GPT512,
    ),
    ("snapd-defaults-connections-mbr.yaml", "volumename"): (
        # offset 12345 is not sector aligned: the partition starts at sector 25
        [("", 25 * 512, 88888, 1, "0C"), ("writable", 199 * 512, 8 * M, 2, "83")],
        199 * 512 + 8 * M + 512,
    ),
    ("snapd-multivolume-uc20-bare-volume.yaml", "frobinator-image"): (
        [
            ("ubuntu-seed", 1 * M, 500 * M, 1, LINUX_GUID),
            ("ubuntu-save", 501 * M, 10 * M, None, LINUX_GUID),
            ("ubuntu-boot", 511 * M, 500 * M, None, LINUX_GUID),
            ("ubuntu-data", 1011 * M, 1 * G, None, LINUX_GUID),
        ],
        2035 * M + GPT512,
    ),
    ("snapd-multivolume-uc20-bare-volume.yaml", "u-boot-frobinator"): (
        [("u-boot", 24576, 623000, None, None)],
        647680 + GPT512,  # 24576 + 623000 rounded up to 512
    ),
    ("snapd-lk-uc20-explicit-offsets.yaml", "dragonboard"): (
        [
            *[(n, off, size, i + 1, t) for i, (n, off, size, t) in enumerate(LK)],
            # ubuntu-boot (offset 135266304) sorts before ubuntu-seed
            ("ubuntu-boot", 135266304, 10 * M, None, LINUX_GUID),
            ("ubuntu-seed", 145752064, 500 * M, 16, LINUX_GUID),
            ("ubuntu-data", 670040064, 1 * G, None, LINUX_GUID),
        ],
        670040064 + G + GPT512,
    ),
    ("ui-multi-volume.yaml", "first"): (
        [("EFI System", 1 * M, 50 * M, 1, ESP_GUID)],
        51 * M + GPT512,
    ),
    ("ui-multi-volume.yaml", "second"): (
        [("", 1 * M, 200, 1, "00000000-0000-0000-0000-0000FEEDFACE")],
        1 * M + 512 + GPT512,
    ),
    ("ui-multi-volume.yaml", "third"): (
        [("writable", 1 * M, 8 * M, 1, "00000000-0000-0000-0000-0000DEAFBEAD")],
        9 * M + GPT512,
    ),
    ("ui-multi-volume.yaml", "fourth"): (
        [("", 1 * M, 400, 1, "00000000-0000-0000-0000-0000DEAFBEAD")],
        1 * M + 512 + GPT512,
    ),
    ("ui-emmc-schema-volume.yaml", "pc"): (
        [*PC16[:3], ("ubuntu-data", 52 * M, 1 * G, 3, LINUX_GUID)],
        1076 * M + GPT512,
    ),
    ("ui-system-boot-state.yaml", "pc"): (
        [
            ("ubuntu-boot-state", 10485760, 1 * M, 1, "3DE21764-95BD-54BD-A5C3-4ABE786F38A8"),
            ("ubuntu-seed", 74448896, 800 * M, 2, LINUX_GUID),
            ("ubuntu-boot", 913309696, 300 * M, None, LINUX_GUID),
            ("ubuntu-save", 1227882496, 16 * M, None, LINUX_GUID),
            ("ubuntu-data", 1244659712, 1 * G, None, LINUX_GUID),
        ],
        1244659712 + G + GPT512,
    ),
}


@pytest.mark.parametrize(
    ("gadget", "volume"), sorted(EXPECTED), ids=[f"{g}:{v}" for g, v in sorted(EXPECTED)]
)
def test_expected_layout(gadget: str, volume: str) -> None:
    want_rows, want_size = EXPECTED[(gadget, volume)]
    lay = layout(gadget, volume)
    assert rows(lay) == want_rows
    assert lay.size == want_size
    assert lay.size % lay.sector_size == 0
    for s in lay.structures:
        if s.partition_type is not None:
            assert s.start % 512 == 0
            assert s.start_sector * 512 == s.start
            assert s.size_sectors == -(-s.size // 512)


def test_every_image_volume_has_an_expected_layout() -> None:
    for path in sorted(GADGETS.glob("*.yaml")):
        if path.name.startswith("INVALID"):
            continue
        for name, volume in load_gadget(path).volumes.items():
            if volume.produces_image and path.name != "ui-gpt-4k-sector.yaml":  # see test_4k
                assert (path.name, name) in EXPECTED, (path.name, name)


def test_pc_offset_write_and_roles() -> None:
    lay = layout("pc-amd64-uc16.yaml", "pc")
    bios = lay.structure("BIOS Boot")
    assert bios.offset_write is not None
    assert (bios.offset_write.at, bios.offset_write.value) == (92, 2048)
    assert bios.offset_write.to_bytes() == (2048).to_bytes(4, "little")
    efi = lay.structure("EFI System")
    assert (efi.role, efi.filesystem, efi.label, efi.bootable) == (
        "system-boot",
        "vfat",
        "system-boot",
        False,  # no bootable flag on GPT
    )
    writable = lay.structure("writable")
    assert writable.implicit and writable.structure_name == ""
    assert (writable.filesystem, writable.label, writable.role) == (
        "ext4",
        "writable",
        "system-data",
    )
    mbr = lay.structure("mbr")
    assert mbr.content[0].kind == "image" and mbr.content[0].start == 0


def test_mbr_bootable_flag() -> None:
    lay = layout("pi3-uc16-implicit-data.yaml", "pi3")
    assert [s.bootable for s in lay.structures] == [True, False]
    beagle = layout("beaglebone-mbr-bare-offsets.yaml", "disk")
    assert [s.bootable for s in beagle.partitions] == [True, False]


def test_uc20_structures_made_at_install() -> None:
    lay = layout("pc-amd64-uc20.yaml", "pc")
    made = {s.name: s.in_image for s in lay.structures}
    assert made == {
        "mbr": True,
        "BIOS Boot": True,
        "ubuntu-seed": True,
        "ubuntu-boot": False,
        "ubuntu-save": False,
        "ubuntu-data": False,
    }
    assert [p.name for p in lay.partitions] == ["BIOS Boot", "ubuntu-seed"]


def test_4k_sectors() -> None:
    lay = layout("ui-gpt-4k-sector.yaml", "pc", sector_size=4096)
    assert lay.sector_size == 4096
    assert [(s.name, s.start_sector, s.partition_number) for s in lay.structures] == [
        ("mbr", 0, None),
        ("BIOS Boot", 256, 1),
        ("EFI System", 512, 2),
        ("writable", 514 * 256, 3),
    ]
    bios = lay.structure("BIOS Boot")
    assert bios.offset_write is not None and bios.offset_write.value == 256
    assert lay.size == 522 * M + 11 * 4096  # GPT at 4K: 6 + 5 sectors


def test_image_size_fills_implicit_writable() -> None:
    lay = layout("pc-amd64-uc16.yaml", "pc", image_size=4 * G)
    assert lay.size == 4 * G
    writable = lay.structure("writable")
    assert writable.start == 52 * M
    assert writable.end == 4 * G - 33 * 512  # up to the backup GPT
    mbr_lay = layout("pi3-uc16-implicit-data.yaml", "pi3", image_size=1 * G)
    assert mbr_lay.structure("writable").end == 1 * G


def test_image_size_too_small() -> None:
    with pytest.raises(GadgetError) as exc:
        layout("pc-amd64-uc20.yaml", "pc", image_size=1 * G)
    assert "image size smaller than minimum required size: vol:pc" in exc.value.message
    # exactly the minimum: the layout plus the backup GPT
    need = 2992 * M + 33 * 512
    assert layout("pc-amd64-uc20.yaml", "pc", image_size=need).size == need


def test_image_size_rounds_to_sector() -> None:
    assert layout("pc-amd64-uc20.yaml", "pc", image_size=4 * G + 1).size == 4 * G + 512


def test_system_data_size() -> None:
    assert system_data_size_for_content(0) == 8 * M
    assert system_data_size_for_content(100 * M) == 158 * M
    lay = layout("pc-amd64-uc16.yaml", "pc", system_data_size=100 * M + 1)
    assert lay.structure("writable").size == 100 * M + 512


def test_bad_sector_size() -> None:
    with pytest.raises(GadgetError, match="512 or 4096"):
        layout("pc-amd64-uc16.yaml", "pc", sector_size=1024)


def test_emmc_volume_refused() -> None:
    with pytest.raises(GadgetError, match="no disk image"):
        layout("ui-emmc-schema-volume.yaml", "my-emmc")


def test_to_json_round_trips() -> None:
    lay = layout("pc-amd64-uc16.yaml", "pc")
    doc = json.loads(json.dumps(lay.to_json()))
    assert doc["schema"] == "gpt" and doc["size"] == lay.size
    assert doc["structures"][1]["offset_write"] == {"at": 92, "value": 2048}
    assert doc["structures"][3]["name"] == "writable"


def _gadget(structures: str, schema: str = "gpt") -> str:
    head = f"volumes:\n  pc:\n    bootloader: grub\n    schema: {schema}\n"
    return head + "    structure:\n" + structures


def test_structure_over_gpt_header() -> None:
    text = _gadget("      - {name: raw, type: bare, offset: 512, size: 1024}\n")
    vol = parse_gadget_yaml(text).volumes["pc"]
    with pytest.raises(GadgetError) as exc:
        lay_out_volume(vol)
    assert 'The structure "raw" overlaps GPT header or GPT partition table' in exc.value.message
    assert 'volume "pc"' in exc.value.message
    # fine with 512-byte sectors just after the table, not with 4K sectors
    text = _gadget("      - {name: raw, type: bare, offset: 17408, size: 1024}\n")
    vol = parse_gadget_yaml(text).volumes["pc"]
    assert lay_out_volume(vol).structures[0].start == 17408
    with pytest.raises(GadgetError, match="overlaps GPT header"):
        lay_out_volume(vol, sector_size=4096)


def test_rounding_overlap_detected() -> None:
    text = _gadget(
        "      - {name: a, type: 83, offset: 1048576, size: 1000}\n"
        "      - {name: b, type: 83, offset: 1049000, size: 1000}\n",
        schema="mbr",
    )
    with pytest.raises(GadgetError, match='"b" overlaps with the preceding structure "a"'):
        parse_gadget_yaml(text)
    # valid for the gadget rules, but both round up to the same 4K sector
    text = _gadget(
        "      - {name: a, type: 83, offset: 1049000, size: 1000}\n"
        "      - {name: b, type: 83, offset: 1050000, size: 4096}\n",
        schema="mbr",
    )
    vol = parse_gadget_yaml(text).volumes["pc"]
    assert lay_out_volume(vol).structure("a").start == 2049 * 512
    assert lay_out_volume(vol).structure("b").start == 2051 * 512
    with pytest.raises(GadgetError, match="once aligned to 4096-byte sectors"):
        lay_out_volume(vol, sector_size=4096)


def _gadget_dir(tmp_path: Path, structures: str) -> Path:
    (tmp_path / "meta").mkdir(parents=True)
    (tmp_path / "meta" / "gadget.yaml").write_text(_gadget(structures))
    return tmp_path


def test_image_content_laid_out(tmp_path: Path) -> None:
    root = _gadget_dir(
        tmp_path,
        "      - name: raw\n        type: bare\n        offset: 1M\n        size: 8192\n"
        "        content:\n          - image: a.img\n          - image: b.img\n"
        "            offset: 4096\n            size: 2048\n",
    )
    (root / "a.img").write_bytes(b"a" * 1000)
    (root / "b.img").write_bytes(b"b" * 2000)
    lay = lay_out_volume(load_gadget(root).volumes["pc"])
    a, b = lay.structures[0].content
    assert (a.start, a.size, a.path) == (M, 1000, root / "a.img")
    assert (b.start, b.size, b.path) == (M + 4096, 2048, root / "b.img")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("          - image: a.img\n            size: 10\n", 'content "a.img" size 1000 is larger'),
        ("          - image: a.img\n            offset: 8000\n", '"a.img" does not fit in the'),
        (
            "          - image: a.img\n            offset: 100\n          - image: b.img\n"
            "            offset: 500\n",
            'content "b.img" overlaps with preceding image "a.img"',
        ),
        ("          - image: missing.img\n", 'content "missing.img": No such file'),
    ],
)
def test_image_content_errors(tmp_path: Path, content: str, message: str) -> None:
    root = _gadget_dir(
        tmp_path,
        "      - name: raw\n        type: bare\n        offset: 1M\n        size: 8192\n"
        "        content:\n" + content,
    )
    (root / "a.img").write_bytes(b"a" * 1000)
    (root / "b.img").write_bytes(b"b" * 2000)
    with pytest.raises(GadgetError) as exc:
        lay_out_volume(load_gadget(root).volumes["pc"])
    assert message in exc.value.message
    assert '"raw"' in exc.value.message


def test_file_content_resolved(tmp_path: Path) -> None:
    root = _gadget_dir(
        tmp_path,
        "      - name: boot\n        type: EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
        "        filesystem: vfat\n        size: 10M\n        content:\n"
        "          - {source: grub.cfg, target: EFI/ubuntu/grub.cfg}\n"
        "          - {source: blobs/, target: /}\n"
        "          - {source: $kernel:dtbs/dtbs/broadcom/, target: /}\n",
    )
    (root / "grub.cfg").write_text("x")
    (root / "blobs").mkdir()
    lay = lay_out_volume(load_gadget(root).volumes["pc"])
    grub, blobs, dtbs = lay.structure("boot").content
    assert (grub.path, grub.target) == (root / "grub.cfg", "EFI/ubuntu/grub.cfg")
    assert blobs.is_directory and blobs.path == root / "blobs"
    assert dtbs.is_kernel_ref and dtbs.path is None
    assert (dtbs.kernel_asset, dtbs.kernel_path) == ("dtbs", "dtbs/broadcom/")
    # with a kernel dir the ref resolves, if the kernel declares the asset
    kernel = tmp_path / "kernel"
    (kernel / "meta").mkdir(parents=True)
    (kernel / "meta" / "kernel.yaml").write_text(
        "assets:\n  dtbs:\n    update: true\n    content:\n      - dtbs/\n"
    )
    lay = lay_out_volume(load_gadget(root).volumes["pc"], kernel_dir=kernel)
    assert lay.structure("boot").content[2].path == kernel / "dtbs/broadcom/"
    (kernel / "meta" / "kernel.yaml").write_text("assets:\n  other:\n    content: [x/]\n")
    with pytest.raises(GadgetError, match='cannot find "dtbs" in kernel info'):
        lay_out_volume(load_gadget(root).volumes["pc"], kernel_dir=kernel)
    (kernel / "meta" / "kernel.yaml").write_text("assets:\n  dtbs:\n    content: [other/]\n")
    with pytest.raises(GadgetError, match='cannot find wanted kernel content "dtbs/broadcom/"'):
        lay_out_volume(load_gadget(root).volumes["pc"], kernel_dir=kernel)


def test_missing_file_content(tmp_path: Path) -> None:
    root = _gadget_dir(
        tmp_path,
        "      - name: boot\n        type: EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
        "        filesystem: vfat\n        size: 10M\n        content:\n"
        "          - {source: grub.cfg, target: EFI/ubuntu/grub.cfg}\n"
        "          - {source: notadir/, target: /}\n",
    )
    with pytest.raises(GadgetError, match="source path does not exist"):
        lay_out_volume(load_gadget(root).volumes["pc"])
    (root / "grub.cfg").write_text("x")
    (root / "notadir").write_text("x")
    with pytest.raises(GadgetError, match="trailing / for a source which is not a directory"):
        lay_out_volume(load_gadget(root).volumes["pc"])


def test_explicit_system_data_grows() -> None:
    """ubuntu-image raises a last UC16/18 system-data to its content and --image-size."""
    lay = layout("ui-emmc-schema-volume.yaml", "pc")
    assert lay.structure("ubuntu-data").size == 1 * G
    lay = layout("ui-emmc-schema-volume.yaml", "pc", system_data_size=2 * G)
    assert lay.structure("ubuntu-data").size == 2 * G
    assert lay.size == 52 * M + 2 * G + GPT512
    lay = layout("ui-emmc-schema-volume.yaml", "pc", image_size=4 * G)
    assert lay.structure("ubuntu-data").end == 4 * G - 33 * 512
    # UC20 data is made by snapd at install: it keeps its gadget size
    lay = layout("pc-amd64-uc20.yaml", "pc", image_size=4 * G, system_data_size=3 * G)
    assert lay.structure("ubuntu-data").size == 1 * G


def test_partial_volume_refused() -> None:
    text = (
        "volumes:\n  pc:\n    bootloader: grub\n    partial: [size]\n    structure:\n"
        "      - name: a\n        type: 83,0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
        "        filesystem: ext4\n"
    )
    vol = parse_gadget_yaml(text).volumes["pc"]
    assert vol.partial == ("size",) and vol.structures[0].size == 0
    with pytest.raises(GadgetError, match="only partially defined"):
        lay_out_volume(vol)


def test_content_may_not_leave_the_gadget(tmp_path: Path) -> None:
    root = _gadget_dir(
        tmp_path / "g",
        "      - name: raw\n        type: bare\n        offset: 1M\n        size: 8192\n"
        "        content:\n          - image: /link.img\n",
    )
    (tmp_path / "secret").write_bytes(b"s")
    (root / "link.img").symlink_to(tmp_path / "secret")
    with pytest.raises(GadgetError, match="outside the gadget"):
        lay_out_volume(load_gadget(root).volumes["pc"])
    (root / "link.img").unlink()
    (root / "link.img").write_bytes(b"ok")
    lay = lay_out_volume(load_gadget(root).volumes["pc"])
    assert lay.structures[0].content[0].path == root / "link.img"  # absolute = gadget root
