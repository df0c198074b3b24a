"""Every gadget of the shared corpus gets the verdict its README gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucimage.gadget import GadgetError, ModelContext, load_gadget
from ucimage.gadget.model import ROLE_SYSTEM_BOOT, ROLE_SYSTEM_DATA

from ..conftest import TESTDATA

GADGETS = TESTDATA / "gadgets"

VALID = [
    "beaglebone-mbr-bare-offsets.yaml",
    "dragonboard-gpt-raw-partitions.yaml",
    "imx-uc20-gpt-bare-ext4-seed.yaml",
    "pc-amd64-uc16.yaml",
    "pc-amd64-uc18.yaml",
    "pc-amd64-uc20.yaml",
    "pc-amd64-uc22-minsize.yaml",
    "pc-amd64-uc24.yaml",
    "pc-arm64-uc22-no-bios.yaml",
    "pc-classic-2310-system-seed-null.yaml",
    "pi-arm64-uc20-mbr-hybrid-types.yaml",
    "pi-armhf-uc18-kernel-refs.yaml",
    "pi-uc24-piboot.yaml",
    "pi3-uc16-implicit-data.yaml",
    "snapd-defaults-connections-mbr.yaml",
    "snapd-lk-uc20-explicit-offsets.yaml",
    "snapd-multivolume-uc20-bare-volume.yaml",
    "ui-emmc-schema-volume.yaml",
    "ui-gpt-4k-sector.yaml",
    "ui-multi-volume.yaml",
    "ui-system-boot-state.yaml",
]

INVALID = {
    "INVALID-ui-content-dotdot-path.yaml": "disallowed for security purposes",
    "INVALID-ui-two-seeded-volumes.yaml": (
        "cannot have more than one partition with system-seed role across volumes"
    ),
}


def test_corpus_is_complete() -> None:
    """A new file in the corpus must get a verdict here."""
    on_disk = {p.name for p in GADGETS.glob("*.yaml")}
    assert on_disk == set(VALID) | set(INVALID)


@pytest.mark.parametrize("name", VALID)
def test_valid(name: str) -> None:
    info = load_gadget(GADGETS / name)
    assert info.volumes
    assert sum(1 for v in info.volumes.values() if v.bootloader) == 1
    for volume in info.volumes.values():
        offsets = [s.offset for s in volume.structures if s.offset is not None]
        assert offsets == sorted(offsets), "structures are sorted by offset"


@pytest.mark.parametrize(("name", "message"), sorted(INVALID.items()))
def test_invalid(name: str, message: str) -> None:
    with pytest.raises(GadgetError) as exc:
        load_gadget(GADGETS / name)
    assert message in exc.value.message


def test_uc16_implicit_writable_and_legacy_roles() -> None:
    info = load_gadget(GADGETS / "pc-amd64-uc16.yaml")
    assert info.ruleset == "uc16"
    pc = info.volumes["pc"]
    mbr, bios, efi, writable = pc.structures
    assert (mbr.role, mbr.type.kind, mbr.offset) == ("mbr", "mbr", 0)
    assert bios.type.kind == "hybrid"
    assert (bios.type.mbr_id, bios.type.guid) == ("DA", "21686148-6449-6E6F-744E-656564454649")
    assert bios.offset_write is not None
    assert (bios.offset_write.relative_to, bios.offset_write.offset) == ("mbr", 92)
    assert efi.role == ROLE_SYSTEM_BOOT  # from filesystem-label: system-boot
    assert (efi.offset, efi.size, efi.filesystem) == (2 << 20, 50 << 20, "vfat")
    assert writable.implicit and writable.role == ROLE_SYSTEM_DATA
    assert (writable.label, writable.filesystem, writable.offset) == ("writable", "ext4", 52 << 20)
    assert writable.yaml_index == 3
    assert writable.type.raw == "83,0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def test_no_implicit_writable_when_data_or_seed_or_several_volumes() -> None:
    for name in (
        "pc-amd64-uc20.yaml",
        "ui-multi-volume.yaml",
        "snapd-multivolume-uc20-bare-volume.yaml",
        "ui-emmc-schema-volume.yaml",
    ):
        info = load_gadget(GADGETS / name)
        assert not any(s.implicit for v in info.volumes.values() for s in v.structures), name


def test_uc20_implicit_labels() -> None:
    info = load_gadget(GADGETS / "pc-amd64-uc20.yaml")
    assert info.ruleset == "uc20"
    labels = {s.role: s.label for s in info.volumes["pc"].structures if s.role}
    assert labels["system-seed"] == "ubuntu-seed"
    assert labels["system-boot"] == "ubuntu-boot"
    assert labels["system-save"] == "ubuntu-save"
    assert labels["system-data"] == "ubuntu-data"
    seed = info.volumes["pc"].structure("ubuntu-seed")
    assert seed.update.edition == 2
    assert info.volumes["pc"].structure("mbr").update.edition == 1


def test_minsize_keeps_later_offset_unknown() -> None:
    pc = load_gadget(GADGETS / "pc-amd64-uc22-minsize.yaml").volumes["pc"]
    save = pc.structure("ubuntu-save")
    assert (save.min_size, save.size) == (16 << 20, 32 << 20)
    # after a variable-size structure snapd leaves the offset unknown
    assert pc.structure("ubuntu-data").offset is None
    assert pc.min_size < pc.size


def test_seed_null_needs_classic_model() -> None:
    path = GADGETS / "pc-classic-2310-system-seed-null.yaml"
    info = load_gadget(path)
    assert info.classic_with_modes
    load_gadget(path, model=ModelContext(classic=True, has_modes=True))
    with pytest.raises(GadgetError) as exc:
        load_gadget(path, model=ModelContext(classic=False, has_modes=True))
    assert "model requires system-seed structure, but none was found" in exc.value.message


def test_defaults_and_connections() -> None:
    info = load_gadget(GADGETS / "snapd-defaults-connections-mbr.yaml")
    assert info.defaults == {"system": {"something": True}}
    plugs = [(c.plug_snap_id, c.plug, c.slot_snap_id, c.slot) for c in info.connections]
    assert plugs == [
        ("snapid1", "plg1", "snapid2", "slot"),
        ("snapid3", "process-control", "system", "process-control"),
        ("snapid4", "pctl4", "system", "process-control"),
    ]
    vol = info.volumes["volumename"]
    assert vol.id == "0C"
    (boot, _writable) = vol.structures
    assert boot.content[0].unpack is False
    assert boot.content[0].source == "subdir/"
    beagle = load_gadget(GADGETS / "beaglebone-mbr-bare-offsets.yaml")
    assert beagle.defaults == {
        "99T7MUlRhtI3U0QFgl5mXXESAiSwt776": {"service": {"rsyslog": {"disabled": True}}}
    }


def test_kernel_refs_recorded() -> None:
    info = load_gadget(GADGETS / "pi-armhf-uc18-kernel-refs.yaml")
    refs = [c.kernel_ref for s in info.volumes["pi"].structures for c in s.content if c.kernel_ref]
    assert refs == [("dtbs", "dtbs/")]


def test_emmc_volume_has_no_image() -> None:
    info = load_gadget(GADGETS / "ui-emmc-schema-volume.yaml")
    emmc = info.volumes["my-emmc"]
    assert emmc.schema == "emmc" and not emmc.produces_image
    assert emmc.structures[0].type.kind == "none"


def test_gpt_overlap_warning_like_snapd() -> None:
    info = load_gadget(GADGETS / "snapd-lk-uc20-explicit-offsets.yaml")
    assert any("might be overlapped" in w and '"cdt"' in w for w in info.warnings)


def test_hybrid_and_schema_types() -> None:
    pi = load_gadget(GADGETS / "pi-arm64-uc20-mbr-hybrid-types.yaml").volumes["pi"]
    data = pi.structure("ubuntu-data")
    assert data.type.for_schema("mbr") == "83"
    assert data.type.for_schema("gpt") == "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def test_load_gadget_dir_and_meta(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    src = (GADGETS / "pc-amd64-uc16.yaml").read_bytes()
    (tmp_path / "meta" / "gadget.yaml").write_bytes(src)
    from_dir = load_gadget(tmp_path)
    from_file = load_gadget(tmp_path / "meta" / "gadget.yaml")
    assert from_dir.root == tmp_path == from_file.root
    assert from_dir.volumes == from_file.volumes
    assert load_gadget(GADGETS / "pc-amd64-uc16.yaml").root is None


def test_load_gadget_errors(tmp_path: Path) -> None:
    with pytest.raises(GadgetError, match="does not exist"):
        load_gadget(tmp_path / "nope.yaml")
    (tmp_path / "gadget.yaml").write_text("volumes: {}\n")
    with pytest.raises(GadgetError) as exc:
        load_gadget(tmp_path)
    assert exc.value.hint and "meta/" in exc.value.hint
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"volumes:\n  pc: \xff\xfe\n")
    with pytest.raises(GadgetError, match="not UTF-8"):
        load_gadget(bad)


def test_objects_are_frozen() -> None:
    import dataclasses

    info = load_gadget(GADGETS / "pc-amd64-uc16.yaml")
    s = info.volumes["pc"].structures[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.size = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.volumes["pc"].structures = ()  # type: ignore[misc]
    assert isinstance(info.volumes["pc"].structures, tuple)
