"""The seed reader on seed trees in a local directory (no image needed), and fuzzed seed.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TESTDATA
from ucimage.errors import UcimageError
from ucimage.inspect.errors import SeedError
from ucimage.inspect.fsread import DirEntry
from ucimage.inspect.seed import SEED16_DIR, read_seed

STUB = TESTDATA / "store" / "fixtures"


class DirReader:
    """The FilesystemReader interface over a local directory (stands in for debugfs/mtools)."""

    description = "a test directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, path: str) -> Path:
        return self.root / PurePosixPath(path).relative_to("/")

    def exists(self, path: str) -> bool:
        return self._p(path).exists()

    def listdir(self, path: str) -> list[DirEntry]:
        p = self._p(path)
        if not p.is_dir():
            raise FileNotFoundError(path)
        return [DirEntry(c.name, c.is_dir(), 0) for c in sorted(p.iterdir())]

    def read_bytes(self, path: str) -> bytes:
        p = self._p(path)
        if not p.is_file():
            raise FileNotFoundError(path)
        return p.read_bytes()

    def extract(self, path: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._p(path), dest)

    def extract_tree(self, path: str, dest: Path) -> None:
        shutil.copytree(self._p(path), dest)


def seed16(root: Path, seed_yaml: str) -> Path:
    seed = root / SEED16_DIR.lstrip("/")
    (seed / "snaps").mkdir(parents=True)
    (seed / "assertions").mkdir()
    for name in ("pc_1.snap", "core22_3.snap"):
        shutil.copyfile(STUB / "snaps" / name, seed / "snaps" / name)
    for name in ("stub-pc.model", "pc.snap-declaration", "pc_1.snap-revision",
                 "stubpublisher.account"):  # fmt: skip
        shutil.copyfile(STUB / "asserts" / name, seed / "assertions" / name)
    (seed / "seed.yaml").write_text(seed_yaml)
    return root


GOOD = """\
snaps:
  - name: pc
    snap-id: PCSTUBxxxxxxxxxxxxxxxxxxxxxxxxx1
    channel: 22
    file: pc_1.snap
  - name: core22
    file: core22_3.snap
    unasserted: true
    devmode: true
"""


def test_reads_a_seed_tree(tmp_path: Path) -> None:
    root = seed16(tmp_path / "fs", GOOD)
    seed = read_seed(DirReader(root), 3, tmp_path / "work")
    assert seed is not None and seed.layout == "uc16"
    rows = {s.name: s for s in seed.snaps}
    assert (rows["pc"].revision, rows["pc"].tracking, rows["pc"].publisher) == (
        "1",
        "22/stable",
        "stubpub",
    )
    assert (rows["core22"].revision, rows["core22"].notes) == ("3", "base,devmode")
    assert rows["core22"].tracking == "-" and rows["core22"].unasserted
    # the model wants more snaps than this seed has
    assert "the model requires snap snapd but the seed does not hold it" in seed.problems


@pytest.mark.parametrize(
    ("seed_yaml", "message"),
    [
        ("- a\n- b\n", "has no 'snaps' list"),
        ("snaps: {}\n", "has no 'snaps' list"),
        ("snaps:\n  - name: pc\n", "every snap needs a name and a file"),
        ("snaps:\n  - name: pc\n    file: ../x.snap\n", "bad file name"),
        (
            "snaps:\n  - {name: pc, file: pc_1.snap}\n  - {name: pc, file: pc_1.snap}\n",
            "lists snap pc twice",
        ),
        ("snaps: [\n", "cannot parse"),
        ("snaps:\n  - name: a\n    name: b\n", "duplicate key"),
    ],
)
def test_bad_seed_yaml(tmp_path: Path, seed_yaml: str, message: str) -> None:
    root = seed16(tmp_path / "fs", seed_yaml)
    with pytest.raises(SeedError, match=message):
        read_seed(DirReader(root), 3, tmp_path / "work")


def test_no_model(tmp_path: Path) -> None:
    root = seed16(tmp_path / "fs", GOOD)
    (root / SEED16_DIR.lstrip("/") / "assertions" / "stub-pc.model").unlink()
    with pytest.raises(SeedError, match="exactly one model assertion, found 0"):
        read_seed(DirReader(root), 3, tmp_path / "work")


def test_no_seed_at_all(tmp_path: Path) -> None:
    (tmp_path / "fs").mkdir()
    assert read_seed(DirReader(tmp_path / "fs"), 1, tmp_path / "work") is None


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(snaps=st.lists(st.dictionaries(st.sampled_from(
    ["name", "file", "snap-id", "channel", "unasserted", "devmode", "classic", "private"]
), _yaml_values, max_size=6), max_size=4))  # fmt: skip
def test_fuzzed_seed_yaml_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, snaps: list[dict[str, object]]
) -> None:
    import yaml

    base = tmp_path_factory.mktemp("fuzz")
    root = seed16(base / "fs", yaml.safe_dump({"snaps": snaps}))
    try:
        seed = read_seed(DirReader(root), 3, base / "work")
    except UcimageError:
        return
    assert seed is not None


def test_model_pinned_track_resolves_the_channel(tmp_path: Path) -> None:
    from tests.build_snaps import MODEL_UC18, sign_model

    root = seed16(tmp_path / "fs", GOOD.replace("channel: 22", "channel: stable"))
    adir = root / SEED16_DIR.lstrip("/") / "assertions"
    (adir / "stub-pc.model").unlink()
    sign_model({**MODEL_UC18, "gadget": "pc=22"}, adir / "model")
    seed = read_seed(DirReader(root), 3, tmp_path / "work")
    assert seed is not None
    rows = {s.name: s for s in seed.snaps}
    assert (rows["pc"].channel, rows["pc"].tracking) == ("22/stable", "22/stable")
