"""Our verdicts against the real snapd: ``snap pack`` validates gadget.yaml.

Debian's snapd 2.57.6 ``snap pack`` runs ``gadget.ReadInfoAndValidate`` and
``gadget.ValidateContent`` (no model) on a gadget snap.  Every gadget of the
corpus and of the rule table is packed with it; the verdicts must agree and
snapd's innermost message must appear in ours, except where a documented
difference applies (rules added to snapd after 2.57, ubuntu-image's own
rules, and our stricter checks).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.snapd_oracle import needs_snap
from ucimage.gadget import GadgetError, load_gadget, parse_gadget_yaml
from ucimage.run import run

from ..conftest import TESTDATA
from ..unit.test_gadget_rules import CASES, _text

pytestmark = [
    pytest.mark.integration,
    needs_snap,
]

GADGETS = TESTDATA / "gadgets"

#: rules snapd gained after 2.57 (README "current snapd" column), which 2.57 accepts
NEWER_SNAPD = {
    "min-size-suffix",  # min-size: 2.60
    "min-size-bigger",
    "offset-write-unexpected",  # offset-write restricted to the first structure: 2.60
    "offset-write-not-zero",
    "offset-write-outside-structure",
    "offset-write-outside-volume",
    "vfat-label-case",  # case-insensitive vfat labels: 2.60
    "reserved-label-vfat-case",
    "partial-invalid",  # partial: 2.61
    "partial-repeated",
    "partial-schema-set",
    "kernel-cmdline-root",  # kernel-cmdline stanza: 2.59
    "kernel-cmdline-snapd",
    "kernel-cmdline-not-unique",
    "kernel-cmdline-glob",
}
#: our stricter checks (project rules / ubuntu-image's, or inferred model)
STRICTER = {
    "target-dotdot",  # content targets may not leave the filesystem either
    "duplicate-key",  # duplicate YAML keys are rejected (project rule)
    # without a model snapd 2.57 applies no implicit labels; we infer UC20 from the seed
    "implied-label-taken",
}
#: same verdict, different wording in 2.57 (or a different first error)
WORDING = {
    "overlap-explicit",  # 2.57: structure #2 ("x") overlaps ... structure #1 ("y")
    "overlap-after-sort",
    "mbr-not-first",  # 2.57 checked before applying implicit offsets
    "type-mbr-id-on-gpt",  # 2.57 checks types before the schema defaults to gpt
    "partial-schema-types",
    "source-dotdot",  # 2.57: source path does not exist; ubuntu-image: ../ disallowed
    "image-dotdot",
    "seed-and-seed-null",  # 2.57 does not know system-seed-null
    "classic-modes-no-boot",
    "yaml-syntax",  # Go yaml vs PyYAML parser messages
    "not-a-mapping",
    "structure-not-list",
    "name-is-mapping",
}

#: corpus files 2.57 rejects although they are valid for current snapd (README)
CORPUS_NEWER = {
    "pc-classic-2310-system-seed-null.yaml": 'invalid role "system-seed-null": unsupported role',
    "ui-emmc-schema-volume.yaml": 'invalid schema "emmc"',
    "ui-system-boot-state.yaml": "unsupported role",
}


def _create_content(root: Path, node: Any) -> None:
    """Create every file the gadget refers to, so ValidateContent passes."""
    if isinstance(node, dict):
        for key in ("image", "source"):
            value = node.get(key)
            if isinstance(value, str) and value and not value.startswith("$kernel:"):
                if ".." in value:
                    continue
                path = root / value.lstrip("/")
                if value.endswith("/"):
                    path.mkdir(parents=True, exist_ok=True)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"x")
        for child in node.values():
            _create_content(root, child)
    elif isinstance(node, list):
        for child in node:
            _create_content(root, child)


def snapd_verdict(tmp_path: Path, text: str) -> str | None:
    """None when ``snap pack`` accepts the gadget, else its message."""
    root = tmp_path / "gadget"
    (root / "meta").mkdir(parents=True)
    root.chmod(0o755)
    (root / "meta" / "snap.yaml").write_text("name: pc\nversion: '1'\ntype: gadget\n")
    (root / "meta" / "gadget.yaml").write_text(text)
    try:
        _create_content(root, yaml.safe_load(text))
    except yaml.YAMLError:
        pass
    result = run(["snap", "pack", root, tmp_path / "out"], check=False)
    if result.returncode == 0:
        return None
    err = result.stderr.decode().strip()
    prefix = f'error: cannot pack "{root}": '
    assert err.startswith(prefix), err
    return err[len(prefix) :]


def ours(text: str) -> str | None:
    try:
        parse_gadget_yaml(text)
    except GadgetError as exc:
        return exc.message
    return None


@pytest.mark.parametrize(
    ("case_id", "gadget"),
    [pytest.param(c[0], c[1], id=c[0]) for c in CASES if c[2] is None],
)
def test_rule_table_against_snapd(tmp_path: Path, case_id: str, gadget: Any) -> None:
    text = _text(gadget)
    theirs = snapd_verdict(tmp_path, text)
    mine = ours(text)
    assert mine is not None, "every table entry is invalid for us"
    if case_id in NEWER_SNAPD or case_id in STRICTER:
        assert theirs is None, f"snapd 2.57 now rejects {case_id}: drop it from the exceptions"
        return
    assert theirs is not None, f"snapd accepts {case_id}, we say: {mine}"
    innermost = theirs.split("cannot parse gadget metadata: ")[-1].split(": ")[-1]
    if case_id in WORDING:
        assert innermost not in mine, f"{case_id} now matches snapd: drop it from WORDING"
    else:
        assert innermost in mine, f"snapd: {theirs!r}\nours:  {mine!r}"


@pytest.mark.parametrize("name", sorted(p.name for p in GADGETS.glob("*.yaml")))
def test_corpus_against_snapd(tmp_path: Path, name: str) -> None:
    text = (GADGETS / name).read_text()
    theirs = snapd_verdict(tmp_path, text)
    try:
        load_gadget(GADGETS / name)
        mine = None
    except GadgetError as exc:
        mine = exc.message
    if name in CORPUS_NEWER:
        assert theirs is not None and CORPUS_NEWER[name] in theirs
        assert mine is None
    elif name.startswith("INVALID"):
        assert theirs is not None and mine is not None
    else:
        assert theirs is None, theirs
        assert mine is None, mine


def test_gadget_snap_file(tmp_path: Path) -> None:
    """A packed .snap loads like its directory (read with unsquashfs)."""
    root = tmp_path / "gadget"
    (root / "meta").mkdir(parents=True)
    root.chmod(0o755)
    (root / "meta" / "snap.yaml").write_text("name: pc\nversion: '1'\ntype: gadget\n")
    shutil.copy(GADGETS / "pc-amd64-uc20.yaml", root / "meta" / "gadget.yaml")
    _create_content(root, yaml.safe_load((root / "meta" / "gadget.yaml").read_text()))
    run(["snap", "pack", root, tmp_path])
    (snap,) = tmp_path.glob("*.snap")
    from_snap = load_gadget(snap)
    from_dir = load_gadget(root)
    assert from_snap.volumes.keys() == from_dir.volumes.keys()
    assert from_snap.volumes["pc"].structures == from_dir.volumes["pc"].structures
    assert from_snap.root is None and from_dir.root == root
    assert from_snap.origin.endswith(".snap:meta/gadget.yaml")


def test_snap_without_gadget_yaml(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "meta").mkdir(parents=True)
    root.chmod(0o755)
    (root / "meta" / "snap.yaml").write_text("name: app\nversion: '1'\n")
    run(["snap", "pack", root, tmp_path])
    (snap,) = tmp_path.glob("*.snap")
    with pytest.raises(GadgetError, match=r"cannot read meta/gadget\.yaml"):
        load_gadget(snap)
    not_a_snap = tmp_path / "junk.snap"
    not_a_snap.write_bytes(b"not squashfs")
    with pytest.raises(GadgetError):
        load_gadget(not_a_snap)


# differential fuzzing: corpus gadgets with fields swapped for values from these
# pools must get the same verdict from snapd 2.57 and from us
_POOL: dict[str, list[Any]] = {
    "size": ["1M", "440", "446", "447", 512, "0", "2G", "100", "1G", None],
    "offset": [0, "1M", 512, 17408, "2M", 1048576, None, "3M", 446],
    "type": [
        "bare",
        "mbr",
        "0C",
        "83",
        "EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "83,0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "da",
        None,
    ],
    "role": ["system-boot", "system-data", "system-seed", "system-save", "mbr", "bootselect", None],
    "filesystem-label": ["writable", "ubuntu-seed", "ubuntu-data", "foo", "system-boot", None],
    "filesystem": ["ext4", "vfat", "none", None, "zfs"],
    "name": ["mbr", "a", "EFI System", None],
    "id": ["0C", None],
}
_VOLUME_POOL: dict[str, list[Any]] = {
    "schema": ["gpt", "mbr", None, "dos"],
    "bootloader": ["grub", "u-boot", None, "lk"],
}
#: our messages for the documented differences (newer snapd rules, inferred model)
_KNOWN = (
    "is implied by",  # implicit labels: 2.57 applies none without a model
    'conflicting type: "bare"',  # label system-boot → role (UC16/18 rules)
    "which does not have 0 offset",  # offset-write rules: 2.60
    "refers to an unexpected structure",
    "outside of referred structure",
    "outside of volume of min size",
)
_NEWER_FILES = {
    "pc-classic-2310-system-seed-null.yaml",
    "ui-emmc-schema-volume.yaml",
    "ui-system-boot-state.yaml",
    "pc-amd64-uc22-minsize.yaml",
    "pc-amd64-uc24.yaml",
}
_BASES = sorted(
    p.name
    for p in GADGETS.glob("*.yaml")
    if not p.name.startswith("INVALID") and p.name not in _NEWER_FILES
)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    doc = yaml.safe_load((GADGETS / draw(st.sampled_from(_BASES))).read_text())
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        volume = doc["volumes"][draw(st.sampled_from(sorted(doc["volumes"])))]
        if draw(st.booleans()) and draw(st.booleans()):
            target, pool = volume, _VOLUME_POOL
        else:
            target, pool = draw(st.sampled_from(volume["structure"])), _POOL
        key = draw(st.sampled_from(sorted(pool)))
        value = draw(st.sampled_from(pool[key]))
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return yaml.safe_dump(doc)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(_mutated())
def test_differential_against_snapd(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    theirs = snapd_verdict(tmp_path_factory.mktemp("pack"), text)
    mine = ours(text)
    if mine is not None and any(k in mine for k in _KNOWN):
        return
    assert (theirs is None) == (mine is None), f"snapd: {theirs}\nours:  {mine}\n{text}"
