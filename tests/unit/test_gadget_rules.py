"""One invalid gadget per snapd rule, each with the message it must produce."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from ucimage.gadget import GadgetError, ModelContext, parse_gadget_yaml

MBR: dict[str, Any] = {
    "name": "mbr",
    "type": "mbr",
    "size": 440,
    "content": [{"image": "pc-boot.img"}],
}
BIOS: dict[str, Any] = {
    "name": "BIOS Boot",
    "type": "DA,21686148-6449-6E6F-744E-656564454649",
    "size": "1M",
    "offset": "1M",
    "offset-write": "mbr+92",
    "content": [{"image": "pc-core.img"}],
}
EFI: dict[str, Any] = {
    "name": "EFI System",
    "type": "EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "filesystem": "vfat",
    "filesystem-label": "system-boot",
    "size": "50M",
    "content": [{"source": "grubx64.efi", "target": "EFI/boot/grubx64.efi"}],
}
LINUX = "83,0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def pc16(*structures: dict[str, Any], **volume: Any) -> dict[str, Any]:
    """A UC16-style pc gadget; *structures* replace the default three."""
    structs = list(structures) if structures else [MBR, BIOS, EFI]
    vol: dict[str, Any] = {"bootloader": "grub", "structure": copy.deepcopy(structs)}
    vol.update(volume)
    return {"volumes": {"pc": vol}}


def with_struct(index: int, **changes: Any) -> dict[str, Any]:
    """The pc16 gadget with structure *index* changed (None deletes a key)."""
    g = pc16()
    st = g["volumes"]["pc"]["structure"][index]
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            st.pop(key, None)
        else:
            st[key] = value
    return g


def seed(**kw: Any) -> dict[str, Any]:
    return {
        "name": "ubuntu-seed",
        "role": "system-seed",
        "filesystem": "vfat",
        "type": "EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "size": "1200M",
        **kw,
    }


def role(name: str, role_: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "role": role_, "filesystem": "ext4", "type": LINUX, "size": "100M", **kw}


def uc20(*extra: dict[str, Any], **overrides: dict[str, Any]) -> dict[str, Any]:
    structs = {
        "seed": seed(),
        "boot": role("ubuntu-boot", "system-boot"),
        "save": role("ubuntu-save", "system-save", size="16M"),
        "data": role("ubuntu-data", "system-data", size="1G"),
    }
    for key, value in overrides.items():
        structs[key] = value
    return pc16(MBR, BIOS, *[s for s in structs.values() if s], *extra)


def two_volumes(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"volumes": {"pc": first, "other": second}}


UC20_GOOD = uc20()

# (id, gadget (dict or YAML text), model, expected substring, structure name in message)
CASES: list[tuple[str, Any, ModelContext | None, str, str | None]] = [
    # sizes and offsets (gadget/quantity)
    (
        "size-suffix-K",
        with_struct(1, size="51200K"),
        None,
        'cannot parse size "51200K": invalid suffix "K"',
        "BIOS Boot",
    ),
    (
        "size-hex",
        with_struct(1, size="0x100"),
        None,
        'cannot parse size "0x100": invalid suffix "x100"',
        "BIOS Boot",
    ),
    (
        "size-negative",
        with_struct(1, size=-1),
        None,
        'cannot parse size "-1": size cannot be negative',
        "BIOS Boot",
    ),
    (
        "size-no-number",
        with_struct(1, size="M"),
        None,
        'cannot parse size "M": no numerical prefix',
        "BIOS Boot",
    ),
    (
        "size-float",
        with_struct(1, size=1.5),
        None,
        'cannot parse size "1.5": invalid suffix ".5"',
        "BIOS Boot",
    ),
    (
        "min-size-suffix",
        with_struct(2, min_size="10k"),
        None,
        'cannot parse size "10k": invalid suffix "k"',
        "EFI System",
    ),
    (
        "offset-suffix",
        with_struct(1, offset="1K"),
        None,
        'cannot parse offset "1K": invalid suffix "K"',
        "BIOS Boot",
    ),
    (
        "offset-negative",
        with_struct(1, offset="-1M"),
        None,
        'cannot parse offset "-1M": offset cannot be negative',
        "BIOS Boot",
    ),
    ("missing-size", with_struct(1, size=None), None, "missing size", "BIOS Boot"),
    (
        "min-size-bigger",
        with_struct(2, min_size="60M"),
        None,
        "min-size (62914560) is bigger than size (52428800)",
        "EFI System",
    ),
    # offset-write
    (
        "offset-write-no-name",
        with_struct(1, offset_write="+92"),
        None,
        'cannot parse relative offset "+92": missing volume name',
        "BIOS Boot",
    ),
    (
        "offset-write-no-offset",
        with_struct(1, offset_write="mbr+"),
        None,
        'cannot parse relative offset "mbr+": missing offset',
        "BIOS Boot",
    ),
    (
        "offset-write-4G",
        with_struct(1, offset_write="5G"),
        None,
        'cannot parse relative offset "5G": offset above 4G limit',
        "BIOS Boot",
    ),
    (
        "offset-write-bad-number",
        with_struct(1, offset_write="mbr+9K"),
        None,
        'cannot parse offset "9K": invalid suffix "K"',
        "BIOS Boot",
    ),
    (
        "offset-write-unexpected",
        with_struct(1, offset_write="EFI System+92"),
        None,
        'structure "BIOS Boot" refers to an unexpected structure "EFI System"',
        "BIOS Boot",
    ),
    (
        "offset-write-not-zero",
        pc16({**BIOS, "offset-write": "BIOS Boot+92"}, EFI),
        None,
        'structure "BIOS Boot" refers to structure "BIOS Boot", which does not have 0 offset',
        "BIOS Boot",
    ),
    (
        "offset-write-outside-structure",
        with_struct(1, offset_write="mbr+440"),
        None,
        'structure "BIOS Boot" wants to write offset of 4 bytes to 440, outside of referred '
        'structure "mbr"',
        "BIOS Boot",
    ),
    (
        "offset-write-outside-volume",
        with_struct(1, offset_write="4G"),
        None,
        'structure "BIOS Boot" wants to write offset of 4 bytes to 4294967296, outside of '
        "volume of min size 54525952",
        "BIOS Boot",
    ),
    # ordering and overlaps
    (
        "overlap-explicit",
        pc16(MBR, BIOS, {**EFI, "offset": 1572864}),
        None,
        'structure "EFI System" overlaps with the preceding structure "BIOS Boot"',
        "EFI System",
    ),
    (
        "overlap-after-sort",
        pc16(MBR, {**EFI, "offset": "4M"}, {**BIOS, "offset": "3M", "size": "2M"}),
        None,
        'structure "EFI System" overlaps with the preceding structure "BIOS Boot"',
        "EFI System",
    ),
    # the mbr
    (
        "mbr-too-big",
        with_struct(0, size=447),
        None,
        'invalid role "mbr": mbr structures cannot be larger than 446 bytes',
        "mbr",
    ),
    (
        "mbr-role-too-big",
        pc16({**MBR, "type": "bare", "role": "mbr", "size": 512}, BIOS, EFI),
        None,
        'invalid role "mbr": mbr structures cannot be larger than 446 bytes',
        "mbr",
    ),
    ("mbr-offset", with_struct(0, offset=512), None, "mbr structure must start at offset 0", "mbr"),
    (
        "mbr-not-first",
        pc16(BIOS, {**MBR, "offset": None}, EFI),
        None,
        "mbr structure must start at offset 0",
        "mbr",
    ),
    ("mbr-id", with_struct(0, id="0C"), None, "mbr structure must not specify partition ID", "mbr"),
    (
        "mbr-filesystem",
        with_struct(0, filesystem="ext4"),
        None,
        "mbr structures must not specify a file system",
        "mbr",
    ),
    # types
    (
        "type-missing",
        with_struct(2, type=None),
        None,
        'invalid type "": type is not specified',
        "EFI System",
    ),
    (
        "type-bad",
        with_struct(2, type="XYZ"),
        None,
        'invalid type "XYZ": invalid format',
        "EFI System",
    ),
    (
        "type-lowercase-mbr-id",
        with_struct(2, type="ef"),
        None,
        'invalid type "ef": invalid format',
        "EFI System",
    ),
    (
        "type-bad-hybrid",
        with_struct(2, type="EF,C12A7328"),
        None,
        'invalid type "EF,C12A7328": invalid format of hybrid type',
        "EFI System",
    ),
    (
        "type-mbr-id-on-gpt",
        with_struct(2, type="EF"),
        None,
        'invalid type "EF": MBR structure type with non-MBR schema "gpt"',
        "EFI System",
    ),
    # roles
    (
        "bare-with-role",
        with_struct(1, type="bare", role="system-boot"),
        None,
        'invalid role "system-boot": conflicting type: "bare"',
        "BIOS Boot",
    ),
    (
        "legacy-mbr-with-role",
        with_struct(0, role="system-boot"),
        None,
        'invalid role "system-boot": conflicting legacy type: "mbr"',
        "mbr",
    ),
    (
        "unsupported-role",
        with_struct(2, role="system-recovery"),
        None,
        'invalid role "system-recovery": unsupported role',
        "EFI System",
    ),
    (
        "filesystem-invalid",
        with_struct(2, filesystem="btrfs"),
        None,
        'invalid filesystem "btrfs"',
        "EFI System",
    ),
    # content kinds
    (
        "image-in-filesystem",
        with_struct(2, content=[{"image": "x.img"}]),
        None,
        "invalid content #0: cannot use image content for non-bare file system",
        "EFI System",
    ),
    (
        "source-in-bare",
        with_struct(1, content=[{"source": "a", "target": "b"}]),
        None,
        "invalid content #0: cannot use non-image content for bare file system",
        "BIOS Boot",
    ),
    (
        "missing-source",
        with_struct(2, content=[{"target": "b"}]),
        None,
        "invalid content #0: missing source",
        "EFI System",
    ),
    (
        "missing-target",
        with_struct(2, content=[{"source": "a"}]),
        None,
        "invalid content #0: missing target",
        "EFI System",
    ),
    (
        "missing-image",
        with_struct(1, content=[{"offset": 0}]),
        None,
        "invalid content #0: missing image file name",
        "BIOS Boot",
    ),
    (
        "content-size-suffix",
        with_struct(1, content=[{"image": "a", "size": "1K"}]),
        None,
        'cannot parse size "1K": invalid suffix "K"',
        "BIOS Boot",
    ),
    (
        "source-dotdot",
        with_struct(2, content=[{"source": "../etc/passwd", "target": "x"}]),
        None,
        'filesystem content source "../etc/passwd" contains "../". This is disallowed '
        "for security purposes",
        "EFI System",
    ),
    (
        "image-dotdot",
        with_struct(1, content=[{"image": "blobs/../../x.img"}]),
        None,
        'content image "blobs/../../x.img" contains "../"',
        "BIOS Boot",
    ),
    (
        "target-dotdot",
        with_struct(2, content=[{"source": "a", "target": "../../x"}]),
        None,
        'filesystem content target "../../x" contains "../"',
        "EFI System",
    ),
    (
        "kernel-ref-no-content",
        with_struct(2, content=[{"source": "$kernel:dtbs", "target": "x"}]),
        None,
        'invalid asset and content in kernel ref "$kernel:dtbs"',
        "EFI System",
    ),
    (
        "kernel-ref-dotdot",
        with_struct(2, content=[{"source": "$kernel:dtbs/../x", "target": "x"}]),
        None,
        'invalid content in kernel ref "$kernel:dtbs/../x"',
        "EFI System",
    ),
    (
        "kernel-ref-asset-name",
        with_struct(2, content=[{"source": "$kernel:-dtbs/x", "target": "x"}]),
        None,
        'invalid asset name in kernel ref "$kernel:-dtbs/x"',
        "EFI System",
    ),
    # names and labels
    (
        "name-not-unique",
        pc16(MBR, BIOS, EFI, {**EFI, "filesystem-label": "other"}),
        None,
        'structure name "EFI System" is not unique',
        "EFI System",
    ),
    (
        "label-not-unique",
        pc16(MBR, BIOS, EFI, {**EFI, "name": "EFI 2"}),
        None,
        'filesystem label "system-boot" is not unique',
        "EFI 2",
    ),
    (
        "vfat-label-case",
        pc16(MBR, BIOS, EFI, {**EFI, "name": "EFI 2", "filesystem-label": "SYSTEM-BOOT"}),
        None,
        'filesystem label "SYSTEM-BOOT" is not unique',
        "EFI 2",
    ),
    (
        "implied-label-taken",
        uc20(
            boot=role("ubuntu-boot", "system-boot", **{"filesystem-label": "ubuntu-data"}),
            data=role("ubuntu-data", "system-data"),
        ),
        None,
        'filesystem label "ubuntu-data" is implied by system-data role but was already set '
        "elsewhere",
        "ubuntu-data",
    ),
    (
        "reserved-label-uc16",
        pc16(
            MBR,
            BIOS,
            EFI,
            {
                "name": "x",
                "type": LINUX,
                "size": "1M",
                "filesystem": "ext4",
                "filesystem-label": "ubuntu-data",
            },
        ),
        None,
        'label "ubuntu-data" is reserved',
        "x",
    ),
    (
        "reserved-label-uc20",
        uc20(
            {
                "name": "x",
                "type": LINUX,
                "size": "1M",
                "filesystem": "ext4",
                "filesystem-label": "ubuntu-boot",
            },
            boot={},
        ),
        None,
        'label "ubuntu-boot" is reserved',
        "x",
    ),
    (
        "reserved-label-vfat-case",
        uc20(
            {
                "name": "x",
                "type": LINUX,
                "size": "1M",
                "filesystem": "vfat",
                "filesystem-label": "Ubuntu-Save",
            },
            save={},
        ),
        None,
        'label "Ubuntu-Save" is reserved',
        "x",
    ),
    # volumes
    (
        "volume-name",
        {"volumes": {"p": pc16()["volumes"]["pc"]}},
        None,
        'invalid volume "p": invalid name',
        None,
    ),
    (
        "volume-name-dash",
        {"volumes": {"-pc": pc16()["volumes"]["pc"]}},
        None,
        'invalid volume "-pc": invalid name',
        None,
    ),
    ("schema-invalid", pc16(schema="dos"), None, 'invalid volume "pc": invalid schema "dos"', None),
    (
        "bootloader-invalid",
        pc16(bootloader="syslinux"),
        None,
        "bootloader must be one of grub, u-boot, android-boot, piboot or lk",
        None,
    ),
    (
        "bootloader-missing",
        pc16(bootloader=None),
        None,
        "bootloader not declared in any volume",
        None,
    ),
    (
        "bootloaders-two",
        two_volumes(
            pc16()["volumes"]["pc"],
            {"bootloader": "u-boot", "structure": [{"name": "b", "type": "bare", "size": 512}]},
        ),
        None,
        "too many (2) bootloaders declared",
        None,
    ),
    ("volume-empty", {"volumes": {"pc": None}}, None, 'volume "pc" stanza is empty', None),
    ("partial-invalid", pc16(partial=["foo"]), None, '"foo" is not a valid partial value', None),
    (
        "partial-repeated",
        pc16(partial=["size", "size"]),
        None,
        'partial value "size" is repeated',
        None,
    ),
    (
        "partial-schema-set",
        pc16(partial=["schema"], schema="gpt"),
        None,
        'partial schema is set but schema is still specified as "gpt"',
        None,
    ),
    (
        "partial-schema-types",
        pc16(MBR, {**EFI, "type": "EF"}, partial=["schema"]),
        None,
        "both MBR type and GUID structure type needs to be defined on partial schemas",
        "EFI System",
    ),
    # update
    (
        "edition-negative",
        with_struct(2, update={"edition": -1}),
        None,
        '"edition" must be a positive number, not "-1"',
        "EFI System",
    ),
    (
        "preserve-non-fs",
        with_struct(1, update={"preserve": ["a"]}),
        None,
        "preserving files during update is not supported for non-filesystem structures",
        "BIOS Boot",
    ),
    (
        "preserve-duplicate",
        with_struct(2, update={"preserve": ["a", "a"]}),
        None,
        'duplicate "preserve" entry "a"',
        "EFI System",
    ),
    # roles across volumes
    (
        "two-system-data",
        pc16(
            MBR,
            BIOS,
            EFI,
            role("d1", "system-data"),
            role("d2", "system-data", **{"filesystem-label": "data2"}),
        ),
        None,
        "cannot have more than one partition with system-data role",
        "d2",
    ),
    (
        "seed-without-data",
        uc20(data={}),
        None,
        "the system-seed role requires system-data to be defined",
        None,
    ),
    (
        "save-without-modes",
        pc16(MBR, BIOS, EFI, role("ubuntu-save", "system-save"), role("w", "system-data")),
        None,
        "model does not support the system-save role",
        None,
    ),
    (
        "data-label-uc16",
        pc16(MBR, BIOS, EFI, role("w", "system-data", **{"filesystem-label": "data"})),
        None,
        'system-data structure must have an implicit label or "writable", not "data"',
        "w",
    ),
    (
        "seed-label",
        uc20(seed=seed(**{"filesystem-label": "seed"})),
        None,
        'system-seed structure must have an implicit label or "ubuntu-seed", not "seed"',
        "ubuntu-seed",
    ),
    (
        "data-label-uc20",
        uc20(data=role("ubuntu-data", "system-data", **{"filesystem-label": "writable"})),
        None,
        'system-data structure must have an implicit label or "ubuntu-data", not "writable"',
        "ubuntu-data",
    ),
    (
        "save-label",
        uc20(save=role("ubuntu-save", "system-save", **{"filesystem-label": "save"})),
        None,
        'system-save structure must have an implicit label or "ubuntu-save", not "save"',
        "ubuntu-save",
    ),
    (
        "boot-other-volume",
        two_volumes(
            uc20(boot={})["volumes"]["pc"], {"structure": [role("ubuntu-boot", "system-boot")]}
        ),
        None,
        "system-boot, system-data, and system-save are expected to share the same volume as "
        "system-seed",
        None,
    ),
    (
        "seed-and-seed-null",
        uc20(role("seed-null", "system-seed-null", **{"filesystem-label": "x"})),
        None,
        "cannot have more than one partition with system-seed/system-seed-null role",
        None,
    ),
    (
        "classic-modes-no-boot",
        pc16(
            MBR, BIOS, role("ubuntu-seed", "system-seed-null"), role("ubuntu-data", "system-data")
        ),
        None,
        "system-boot and system-data roles are needed on classic",
        None,
    ),
    (
        "two-seeds-across-volumes",
        two_volumes(uc20()["volumes"]["pc"], {"structure": [seed(name="s2")]}),
        None,
        "cannot have more than one partition with system-seed role across volumes",
        "s2",
    ),
    # with a model
    (
        "piboot-uc16",
        pc16(bootloader="piboot"),
        ModelContext(has_modes=False),
        "piboot bootloader valid only for UC20 onwards",
        None,
    ),
    (
        "model-needs-seed",
        pc16(MBR, BIOS, EFI, role("w", "system-data")),
        ModelContext(has_modes=True),
        "model requires system-seed structure, but none was found",
        None,
    ),
    (
        "model-needs-seed-or-data",
        pc16(),
        ModelContext(has_modes=True),
        "model requires system-seed partition, but no system-seed or system-data partition found",
        None,
    ),
    (
        "model-no-seed-role",
        UC20_GOOD,
        ModelContext(has_modes=False),
        "model does not support the system-seed role",
        None,
    ),
    # top level
    (
        "defaults-key",
        {**pc16(), "defaults": {"foo": {"a": 1}}},
        None,
        'default stanza not keyed by "system" or snap-id: foo',
        None,
    ),
    (
        "connection-empty-plug",
        {**pc16(), "connections": [{"slot": "system:x"}]},
        None,
        "gadget connection plug cannot be empty",
        None,
    ),
    (
        "connection-bad-plug",
        {**pc16(), "connections": [{"plug": "foo"}]},
        None,
        'in gadget connection plug: expected "(<snap-id>|system):name" not "foo"',
        None,
    ),
    (
        "connection-bad-slot",
        {**pc16(), "connections": [{"plug": "a:b", "slot": "a:b:c"}]},
        None,
        'in gadget connection slot: expected "(<snap-id>|system):name" not "a:b:c"',
        None,
    ),
    (
        "kernel-cmdline-root",
        {**pc16(), "kernel-cmdline": {"append": ["root=/dev/sda1"]}},
        None,
        "kernel parameter 'root=/dev/sda1' is not allowed",
        None,
    ),
    (
        "kernel-cmdline-snapd",
        {**pc16(), "kernel-cmdline": {"append": ["snapd_recovery_mode"]}},
        None,
        "kernel parameter 'snapd_recovery_mode' is not allowed",
        None,
    ),
    (
        "kernel-cmdline-not-unique",
        {**pc16(), "kernel-cmdline": {"append": ["a=1 b=2"]}},
        None,
        '"a=1 b=2" is not a unique kernel argument',
        None,
    ),
    (
        "kernel-cmdline-glob",
        {**pc16(), "kernel-cmdline": {"allow": ["console=tty*"]}},
        None,
        '"tty*" contains globbing characters and is not quoted',
        None,
    ),
    (
        "duplicate-key",
        "volumes:\n  pc:\n    bootloader: grub\n    bootloader: lk\n",
        None,
        "found duplicate key 'bootloader'",
        None,
    ),
    (
        "size-hex-plain-yaml",
        "volumes:\n  pc:\n    bootloader: grub\n    structure:\n"
        "      - {name: a, type: bare, size: 0x100}\n",
        None,
        'cannot parse size "0x100": invalid suffix "x100"',
        "a",
    ),
    ("yaml-syntax", "volumes: [\n", None, "cannot parse gadget metadata", None),
    ("not-a-mapping", "- a\n- b\n", None, "the document must be a mapping, not a list", None),
    (
        "structure-not-list",
        {"volumes": {"pc": {"bootloader": "grub", "structure": "x"}}},
        None,
        '"structure" must be a list, not a scalar',
        None,
    ),
    (
        "name-is-mapping",
        with_struct(2, name={"a": 1}),
        None,
        'cannot unmarshal a mapping into "name"',
        None,
    ),
]
# a GUID type on an MBR volume
CASES += [
    (
        "type-guid-on-mbr",
        pc16(
            {
                "name": "boot",
                "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                "size": "1M",
                "filesystem": "vfat",
            },
            schema="mbr",
        ),
        None,
        'invalid type "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": GUID structure type with '
        'non-GPT schema "mbr"',
        "boot",
    ),
]


def _text(gadget: Any) -> str:
    return gadget if isinstance(gadget, str) else yaml.safe_dump(gadget, sort_keys=False)


def test_enough_rules() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("gadget", "model", "message", "structure"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_invalid_gadget(
    gadget: Any, model: ModelContext | None, message: str, structure: str | None
) -> None:
    with pytest.raises(GadgetError) as exc:
        parse_gadget_yaml(_text(gadget), model=model)
    err = exc.value
    assert message in err.message, err.problems
    assert err.problems[0] in err.message
    if structure is not None:
        assert f'"{structure}"' in err.message, "message must name the structure"
    if structure is not None or 'invalid volume "' in message:
        assert 'volume "' in err.message, "message must name the volume"


def test_valid_bases_are_valid() -> None:
    """The gadgets the table mutates are valid themselves."""
    assert parse_gadget_yaml(_text(pc16())).volumes["pc"].bootloader == "grub"
    info = parse_gadget_yaml(_text(UC20_GOOD))
    assert info.ruleset == "uc20"
    assert parse_gadget_yaml(_text(UC20_GOOD), model=ModelContext(has_modes=True))


def test_problems_are_collected() -> None:
    g = pc16(MBR, {**BIOS, "size": "1K"}, {**EFI, "size": "2K"})
    with pytest.raises(GadgetError) as exc:
        parse_gadget_yaml(_text(g))
    problems = exc.value.problems
    assert len(problems) == 2
    assert 'invalid suffix "K"' in problems[0]
    assert '"EFI System"' in problems[1]
    assert "more problem" in exc.value.message


def test_problems_in_several_structures() -> None:
    g = pc16(MBR, {**BIOS, "type": "XYZ"}, {**EFI, "filesystem": "zfs"})
    with pytest.raises(GadgetError) as exc:
        parse_gadget_yaml(_text(g))
    problems = exc.value.problems
    assert len(problems) == 2
    assert 'invalid type "XYZ": invalid format' in problems[0]
    assert 'invalid filesystem "zfs"' in problems[1]


def test_error_is_a_ucimage_error() -> None:
    from ucimage.errors import UcimageError

    with pytest.raises(UcimageError):
        parse_gadget_yaml("volumes: {pc: {}}")


def test_legacy_keys_ignored_unknown_warned() -> None:
    g = {**pc16(), "device-tree": "x", "format": 0, "frobnicate": 1}
    info = parse_gadget_yaml(_text(g))
    assert info.warnings == ("unknown top-level key 'frobnicate' ignored",)


def test_octal_looking_size_is_decimal() -> None:
    """YAML 1.1 would read 010 as 8; snapd reads the text: 10 bytes."""
    text = "volumes:\n  pc:\n    bootloader: grub\n    structure:\n"
    text += "      - {name: a, type: bare, size: 010}\n"
    assert parse_gadget_yaml(text).volumes["pc"].structures[0].size == 10


EMMC_BASE = "volumes:\n  pc:\n    bootloader: u-boot\n    schema: mbr\n    structure:\n" + (
    "      - {name: boot, type: 0C, size: 1M, filesystem: vfat}\n  my-emmc:\n    schema: emmc\n"
)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    id: test\n", 'invalid volume "my-emmc": cannot set "id" for eMMC schemas'),
        ("    bootloader: lk\n", 'invalid volume "my-emmc": cannot set "bootloader" for eMMC'),
        ("    partial: [size]\n", 'cannot set "partial" content for eMMC schemas'),
        (
            "    structure:\n      - name: boot0\n        content:\n          - source: a\n",
            "cannot use non-image content for hardware partitions",
        ),
        (
            "    structure:\n      - name: boot1\n        content:\n"
            "          - {image: a, offset: 1000}\n",
            "cannot specify size or offset for content",
        ),
        (
            "    structure:\n      - name: boot0\n        content:\n          - unpack: true\n",
            "missing image file name",
        ),
    ],
)
def test_emmc_rules(extra: str, message: str) -> None:
    """snapd's eMMC rules (gadget_emmc_test.go, snapd 2.66+)."""
    with pytest.raises(GadgetError) as exc:
        parse_gadget_yaml(EMMC_BASE + extra)
    assert message in exc.value.message


def test_emmc_valid() -> None:
    text = EMMC_BASE + (
        "    structure:\n      - name: boot0\n        content:\n          - image: b0\n"
        "      - name: boot1\n        content:\n          - image: b1\n"
    )
    emmc = parse_gadget_yaml(text).volumes["my-emmc"]
    assert [(s.name, s.offset) for s in emmc.structures] == [("boot0", 0), ("boot1", 0)]
    assert not emmc.produces_image


def test_kernel_cmdline_parsed() -> None:
    g = {
        **pc16(),
        "kernel-cmdline": {
            "allow": ["console=*", 'quiet="a*"', "splash"],
            "append": ['opt="a b"', "snapd.debug=1"],
            "remove": ["loglevel=*"],
        },
    }
    info = parse_gadget_yaml(_text(g))
    assert info.kernel_cmdline.allow == ("console=*", 'quiet="a*"', "splash")
    assert info.kernel_cmdline.append == ('opt="a b"', "snapd.debug=1")
    assert info.kernel_cmdline.remove == ("loglevel=*",)


def test_problems_across_sections_are_collected() -> None:
    g = {
        **pc16(MBR, BIOS, {**EFI, "content": [{"source": "../x", "target": "y"}]}),
        "defaults": {"bad key": {}},
        "connections": [{"plug": "nocolon"}],
    }
    with pytest.raises(GadgetError) as exc:
        parse_gadget_yaml(_text(g))
    problems = exc.value.problems
    assert len(problems) == 3
    assert 'default stanza not keyed by "system" or snap-id: bad key' in problems[0]
    assert 'not "nocolon"' in problems[1]
    assert "disallowed for security purposes" in problems[2]


def test_role_rules_still_run_with_other_problems() -> None:
    g = {**uc20(data={}), "defaults": {"bad key": {}}}
    with pytest.raises(GadgetError) as exc:
        parse_gadget_yaml(_text(g))
    assert exc.value.problems[1:] == ("the system-seed role requires system-data to be defined",)
