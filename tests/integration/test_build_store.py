"""`ucimage snap` with snaps from our self-hosted store (ucimage store serve on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.build_snaps import (
    MODEL_UC16_PC,
    MODEL_UC18,
    SNAP_SIGN,
    TRUSTED_FILES,
    make_snap,
    model_uc20,
    model_uc20_pi,
    sign_model,
    snaps_uc16,
    snaps_uc18,
    snaps_uc20,
    snaps_uc20_pi,
)
from tests.integration.test_build_images import (
    debugfs_cat,
    debugfs_ls,
    extract,
    fsck_ok,
    mtools,
    parse_grubenv,
    parse_ubootenv,
    sfdisk,
)
from ucimage.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hermetic: each build's store-client cache is its own, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ucimage(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "ucimage.cli.main", *args], check=True, capture_output=True
    )


@dataclass
class Served:
    """`ucimage store serve` on 127.0.0.1 with its access log in a file."""

    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def requests(self) -> list[str]:
        """Request lines ("GET /path") logged so far, in order."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [m.group(1) for line in lines if (m := re.search(r'"([A-Z]+ \S+) HTTP/', line))]

    def downloads(self, since: int = 0) -> list[str]:
        return [r for r in self.requests()[since:] if "/api/v1/snaps/download/" in r]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "store"
    ucimage("store", "init", str(root), "--authority-id", "teststore")
    port = _free_port()
    log = tmp_path / "store-access.log"
    with open(log, "wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ucimage.cli.main", "store", "serve", str(root),
             "--port", str(port), "--access-log"],
            stdout=output, stderr=subprocess.STDOUT,  # uvicorn logs requests to stdout
        )  # fmt: skip
    server = Served(f"http://127.0.0.1:{port}", root, proc, log)
    try:
        for _ in range(100):
            try:
                httpx.get(server.url + "/v2/snaps/info/none", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield server
    finally:
        server.stop()


@pytest.fixture()
def store(served: Served) -> tuple[str, Path]:
    return served.url, served.root


def push(url: str, root: Path, snap: Path, channel: str) -> None:
    ucimage(
        "store", "push", str(snap), "--release", channel, "--store", url,
        "--token-file", str(root / "upload-token"),
    )  # fmt: skip


def push_all(
    url: str,
    root: Path,
    snaps: Iterable[Path],
    track: str,
    tracked: tuple[str, ...] = ("pc", "pc-kernel"),
) -> None:
    """Push *snaps*: the gadget and kernel (*tracked*) to TRACK/stable, the rest to stable."""
    for snap in snaps:
        push(url, root, snap, f"{track}/stable" if snap.stem in tracked else "stable")


def build_from_store(
    url: str, root: Path, model: Path, out: Path, *extra: str, quiet: bool = True
) -> int:
    args = ["snap", str(model), "--store", url, "--trusted", str(root / "root.assert")]
    args += ["-q"] if quiet else []
    for f in TRUSTED_FILES:
        args += ["--trusted", str(f)]
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        return main([*args, "-O", str(out), *extra])
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]


def test_uc18_from_store(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = served.url, served.root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    push_all(url, root, snaps_uc18(tmp_path / "snaps"), "18")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    before = len(served.requests())
    assert build_from_store(url, root, model, out) == 0
    # the log is read right: the first build downloads each of the five snaps once
    first = served.downloads(before)
    assert len(first) == len(set(first)) == 5, first
    parts = sfdisk(out / "pc.img")["partitions"]
    writable = extract(out / "pc.img", parts[2]["start"], parts[2]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
    seed = "/system-data/var/lib/snapd/seed"
    seed_yaml = debugfs_cat(writable, f"{seed}/seed.yaml").decode()
    assert "- name: pc\n  snap-id: " in seed_yaml
    assert "  channel: 18/stable\n  file: pc_1.snap\n" in seed_yaml
    assertions = debugfs_ls(writable, f"{seed}/assertions")
    assert "model" in assertions
    assert sum(a.endswith(".snap-revision") for a in assertions) == 5
    assert sum(a.endswith(".snap-declaration") for a in assertions) == 5
    assert (out / "snaps.manifest").read_text() == "core18 1\npc-kernel 1\n"
    assert "pc 1\n" in (out / "seed.manifest").read_text()
    # a rebuild is served from the cache (no snap downloaded again): the same image
    again = tmp_path / "again"
    before = len(served.requests())
    assert build_from_store(url, root, model, again) == 0
    assert served.downloads(before) == []
    assert (again / "pc.img").read_bytes() == (out / "pc.img").read_bytes()
    # --offline: the remembered resolution and the cache serve; the store is gone
    served.stop()
    logged = served.requests()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v2/snaps/info/pc", timeout=2)
    offline = tmp_path / "offline"
    assert build_from_store(url, root, model, offline, "--offline") == 0
    assert (offline / "pc.img").read_bytes() == (out / "pc.img").read_bytes()
    assert served.requests() == logged


def test_uc16_from_store(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for snap in snaps_uc16(tmp_path / "snaps"):
        push(url, root, snap, "stable")
    model = sign_model(MODEL_UC16_PC, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out) == 0
    parts = sfdisk(out / "pc.img")["partitions"]
    assert [p["name"] for p in parts] == ["BIOS Boot", "EFI System", "writable"]
    esp = extract(out / "pc.img", parts[1]["start"], parts[1]["size"], tmp_path / "esp")
    fsck_ok(["fsck.vfat", "-n", str(esp)])
    env = parse_grubenv(mtools("mtype", esp, "::EFI/ubuntu/grubenv"))
    assert (env["snap_core"], env["snap_kernel"]) == ("core_1.snap", "pc-kernel_1.snap")
    writable = extract(out / "pc.img", parts[2]["start"], parts[2]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
    seed = "/system-data/var/lib/snapd/seed"
    seed_yaml = debugfs_cat(writable, f"{seed}/seed.yaml").decode()
    for name in ("core", "pc-kernel", "pc"):
        assert f"- name: {name}\n  snap-id: " in seed_yaml
        assert f"file: {name}_1.snap" in seed_yaml
    assert "unasserted" not in seed_yaml and "snapd" not in seed_yaml
    assert sorted(debugfs_ls(writable, f"{seed}/snaps")) == [
        ".", "..", "core_1.snap", "pc-kernel_1.snap", "pc_1.snap"]  # fmt: skip
    assertions = debugfs_ls(writable, f"{seed}/assertions")
    assert sum(a.endswith(".snap-revision") for a in assertions) == 3
    assert (out / "snaps.manifest").read_text() == "core 1\npc-kernel 1\n"
    assert (out / "seed.manifest").read_text() == "core 1\npc 1\npc-kernel 1\n"


def test_channels_and_image_size_from_store(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-c CHANNEL for every snap, --snap NAME=CHANNEL for one, -i VOL:SIZE for the volume."""
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    push_all(url, root, snaps_uc18(tmp_path / "snaps"), "18")
    # second revisions only in riskier channels
    v2 = tmp_path / "v2"
    push(url, root, make_snap(v2, "core18", "base", version="2"), "beta")
    push(url, root, make_snap(v2, "pc-kernel", "kernel", version="2"), "18/beta")
    push(url, root, make_snap(v2, "hello-world", "app", base="core18", version="2"), "edge")
    push(url, root, make_snap(v2, "snapd", "snapd", version="2"), "edge")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    extra = ("-c", "beta", "--snap", "hello-world=edge", "-i", "pc:96M")
    assert build_from_store(url, root, model, out, *extra) == 0
    # beta: core18 2; 18/beta (the model's track kept): pc-kernel 2, pc falls back to
    # 18/stable; snapd has nothing in beta (its 2 is in edge only): 1; hello-world edge: 2
    assert (out / "seed.manifest").read_text() == (
        "core18 2\nhello-world 2\npc 1\npc-kernel 2\nsnapd 1\n"
    )
    assert (out / "snaps.manifest").read_text() == "core18 2\npc-kernel 2\n"
    image = out / "pc.img"
    assert image.stat().st_size == 96 << 20
    parts = sfdisk(image)["partitions"]
    end = (parts[2]["start"] + parts[2]["size"]) * 512
    assert end > (96 << 20) - (1 << 20)  # writable grown to fill the requested size
    writable = extract(image, parts[2]["start"], parts[2]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
    seed = "/system-data/var/lib/snapd/seed"
    seed_yaml = debugfs_cat(writable, f"{seed}/seed.yaml").decode()
    assert "  channel: beta\n  file: core18_2.snap\n" in seed_yaml
    assert "  channel: 18/beta\n  file: pc-kernel_2.snap\n" in seed_yaml
    assert "  channel: 18/beta\n  file: pc_1.snap\n" in seed_yaml
    assert "  channel: edge\n  file: hello-world_2.snap\n" in seed_yaml
    assert "  channel: beta\n  file: snapd_1.snap\n" in seed_yaml
    assert set(debugfs_ls(writable, f"{seed}/snaps")) >= {
        "core18_2.snap", "pc-kernel_2.snap", "pc_1.snap", "hello-world_2.snap", "snapd_1.snap"
    }  # fmt: skip
    parts_esp = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "esp")
    env = parse_grubenv(mtools("mtype", parts_esp, "::EFI/ubuntu/grubenv"))
    assert (env["snap_core"], env["snap_kernel"]) == ("core18_2.snap", "pc-kernel_2.snap")


def test_uc20_signed_from_store(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    push_all(url, root, snaps_uc20(tmp_path / "snaps"), "20")
    model = sign_model(model_uc20("signed"), tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out) == 0
    parts = sfdisk(out / "pc.img")["partitions"]
    seed = extract(out / "pc.img", parts[1]["start"], parts[1]["size"], tmp_path / "seed")
    fsck_ok(["fsck.vfat", "-n", str(seed)])
    listing = mtools("mdir", seed, "-b", "-/", "::").decode()
    assert "::/snaps/pc-kernel_1.snap" in listing and "::/snaps/core20_1.snap" in listing
    assert "options.yaml" not in listing  # nothing overridden, nothing local
    snaps_stream = mtools("mtype", seed, "::systems/20231114/assertions/snaps")
    assert snaps_stream.count(b"type: snap-revision\n") == 5
    env = parse_grubenv(mtools("mtype", seed, "::systems/20231114/grubenv"))
    assert env["snapd_recovery_kernel"] == "/snaps/pc-kernel_1.snap"
    assert (out / "seed.manifest").read_text() == (
        "core20 1\nhello-world 1\npc 1\npc-kernel 1\nsnapd 1\n"
    )


def test_uc20_signed_takes_only_asserted_local_snaps_of_its_own(
    store: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # snapd's seedwriter (policy20) for grade signed: a local file the store knows, of
    # one of the model's snaps, is taken; an unknown file or an extra snap is not
    from tests.build_snaps import make_snap

    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    snaps = snaps_uc20(tmp_path / "snaps")
    push_all(url, root, snaps, "20")
    model = sign_model(model_uc20("signed"), tmp_path / "m.model")
    kernel = next(s for s in snaps if s.stem == "pc-kernel")
    out = tmp_path / "ok"
    assert build_from_store(url, root, model, out, "--snap", str(kernel), "--seed-only") == 0
    assert (out / "seed.manifest").read_text().count("pc-kernel 1\n") == 1
    capsys.readouterr()
    unknown = make_snap(tmp_path / "other", "pc-kernel", "kernel", version="2.0")
    extra = make_snap(tmp_path / "extra", "extra-app", "app", base="core20")
    for i, args in enumerate(
        (["--snap", str(unknown)], ["--snap", str(extra)], ["--snap", "extra-app"])
    ):
        cache = tmp_path / f"cache{i}"
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        out = tmp_path / "refused"
        assert build_from_store(url, root, model, out, *args) == 2
        err = capsys.readouterr().err
        assert "model of grade higher than dangerous" in err, args
        assert not out.exists() or not list(out.glob("*.img"))
        # refused before any download
        assert not list(cache.rglob("*.snap")), args


def test_uc20_signed_pi_mbr_uboot_from_store(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    push_all(url, root, snaps_uc20_pi(tmp_path / "snaps", "u-boot"), "20", ("pi", "pi-kernel"))
    model = sign_model(model_uc20_pi("signed"), tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out) == 0
    table = sfdisk(out / "pi.img")
    assert table["label"] == "dos"
    parts = table["partitions"]
    seed = extract(out / "pi.img", parts[0]["start"], parts[0]["size"], tmp_path / "seed")
    fsck_ok(["fsck.vfat", "-n", str(seed)])
    env = parse_ubootenv(mtools("mtype", seed, "::uboot/ubuntu/boot.sel"))
    assert env == {"snapd_recovery_mode": "install", "snapd_recovery_system": "20231114"}
    listing = mtools("mdir", seed, "-b", "-/", "::").decode()
    assert "::/snaps/pi-kernel_1.snap" in listing
    assert "::/systems/20231114/kernel/kernel.img" in listing
    assert (out / "seed.manifest").read_text() == "core20 1\npi 1\npi-kernel 1\nsnapd 1\n"


def test_revision_pin_from_store(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    snaps = snaps_uc18(tmp_path / "snaps")
    push_all(url, root, snaps, "18")
    # a second hello-world revision, released to stable
    newer = make_snap(tmp_path / "snaps2", "hello-world", "app", base="core18", version="2.0")
    push(url, root, newer, "stable")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out, "--revision", "hello-world:1", quiet=False) == 0
    assert "hello-world 1\n" in (out / "seed.manifest").read_text()
    assert "revision 1 for snap hello-world may not be the latest" in capsys.readouterr().out
    latest = tmp_path / "latest"
    assert build_from_store(url, root, model, latest, "--seed-only") == 0
    assert "hello-world 2\n" in (latest / "seed.manifest").read_text()


def test_uc20_dangerous_store_plus_local_file(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    snaps = snaps_uc20(tmp_path / "snaps")
    push_all(url, root, [s for s in snaps if s.stem != "hello-world"], "20")  # it: local only
    local = next(s for s in snaps if s.stem == "hello-world")
    model = sign_model(model_uc20("dangerous"), tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out, "--snap", str(local), "--seed-only") == 0
    system = out / "system-seed/systems/20231114"
    assert (system / "snaps/hello-world_1.0.snap").read_bytes() == local.read_bytes()
    assert sorted(p.name for p in (out / "system-seed/snaps").iterdir()) == [
        "core20_1.snap", "pc-kernel_1.snap", "pc_1.snap", "snapd_1.snap"]  # fmt: skip
    assert "unasserted: hello-world_1.0.snap" in (system / "options.yaml").read_text()
    snaps_stream = (system / "assertions/snaps").read_bytes()
    assert snaps_stream.count(b"type: snap-declaration\n") == 4
    # the local snap has no revision: not in seed.manifest
    assert (out / "seed.manifest").read_text() == "core20 1\npc 1\npc-kernel 1\nsnapd 1\n"


def test_local_file_known_to_the_store_is_asserted(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    snaps = snaps_uc18(tmp_path / "snaps")
    push_all(url, root, snaps, "18")
    kernel = next(s for s in snaps if s.stem == "pc-kernel")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    assert (
        build_from_store(url, root, model, out, "--snap", str(kernel), "--seed-only", quiet=False)
        == 0
    )
    seed = out / "image/var/lib/snapd/seed"
    seed_yaml = (seed / "seed.yaml").read_text()
    assert "- name: pc-kernel\n  snap-id: " in seed_yaml
    assert "file: pc-kernel_1.snap" in seed_yaml and "unasserted" not in seed_yaml
    assert (seed / "snaps/pc-kernel_1.snap").read_bytes() == kernel.read_bytes()
    assert sum(p.name.endswith(".snap-revision") for p in (seed / "assertions").iterdir()) == 5
    assert (out / "snaps.manifest").read_text() == "core18 1\npc-kernel 1\n"
    assert "channel: 18/stable" in _entry(seed_yaml, "pc-kernel")
    # its channel, as snapd's seedwriter resolves it: --snap NAME=CHANNEL given with the
    # file (merged into it), else -c, over the model's track
    for extra, want in ((["--snap", "pc-kernel=beta"], "18/beta"), (["-c", "edge"], "18/edge")):
        out = tmp_path / f"out-{want.replace('/', '-')}"
        args = ["--snap", str(kernel), *extra, "--seed-only"]
        assert build_from_store(url, root, model, out, *args) == 0
        seed_yaml = (out / "image/var/lib/snapd/seed/seed.yaml").read_text()
        assert f"channel: {want}" in _entry(seed_yaml, "pc-kernel"), seed_yaml
        assert seed_yaml.count("- name: pc-kernel\n") == 1


def _entry(seed_yaml: str, name: str) -> str:
    """The lines of *name*'s entry in a seed.yaml."""
    start = seed_yaml.index(f"- name: {name}\n")
    end = seed_yaml.find("\n- name: ", start + 1)
    return seed_yaml[start : end if end >= 0 else None]


def _snap_ids(url: str, root: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "ucimage.cli.main", "store", "list", "--json", "--store", url,
         "--token-file", str(root / "upload-token")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    items = data["snaps"] if isinstance(data, dict) else data
    return {item["name"]: item["snap-id"] for item in items}


def _validation_set(tmp_path: Path, snaps: list[dict[str, str]]) -> Path:
    from ucimage.assertions import PrivateKey, sign_json

    key = PrivateKey.from_pem((SNAP_SIGN / "keys" / "testkey1.private.pem").read_bytes())
    doc = {
        "type": "validation-set", "authority-id": "testbrand", "account-id": "testbrand",
        "series": "16", "name": "vs1", "sequence": "1", "snaps": snaps,
        "timestamp": "2024-01-01T00:00:00+00:00",
    }  # fmt: skip
    path = tmp_path / "vs1.assert"
    path.write_bytes(sign_json(json.dumps(doc), key).encode())
    return path


@pytest.mark.parametrize("presence", ["required", "invalid"])
def test_validation_set_enforced(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], presence: str,
) -> None:  # fmt: skip
    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    push_all(url, root, snaps_uc18(tmp_path / "snaps"), "18")
    push(url, root, make_snap(tmp_path / "v2", "hello-world", "app", base="core18", version="2"),
         "stable")  # fmt: skip
    ids = _snap_ids(url, root)
    entry = {"name": "hello-world", "id": ids["hello-world"], "presence": presence}
    if presence == "required":
        entry["revision"] = "1"
    vs = _validation_set(tmp_path, [entry])
    ucimage("store", "add-assertion", str(vs), "--store", url,
            "--token-file", str(root / "upload-token"))  # fmt: skip
    headers = dict(MODEL_UC18)
    headers["validation-sets"] = [
        {"account-id": "testbrand", "name": "vs1", "sequence": "1", "mode": "enforce"}
    ]
    model = sign_model(headers, tmp_path / "m.model")
    out = tmp_path / "out"
    rc = build_from_store(url, root, model, out, "--validation", "enforce", "--seed-only")
    if presence == "invalid":
        assert rc == 1
        assert "snap hello-world is invalid in validation set testbrand/vs1" in (
            capsys.readouterr().err
        )
        return
    assert rc == 0
    # hello-world is held at revision 1 (2 is in stable) and governed by the set
    assert (out / "seed.manifest").read_text() == (
        "testbrand/vs1=1\ncore18 1\npc 1\npc-kernel 1\nsnapd 1\n"
    )
    seed = out / "image/var/lib/snapd/seed"
    assert (seed / "snaps/hello-world_1.snap").exists()
    assert "16,testbrand,vs1,1.validation-set" in {p.name for p in (seed / "assertions").iterdir()}
    # without enforcement the latest revision is used
    latest = tmp_path / "latest"
    assert build_from_store(url, root, model, latest, "--validation", "ignore", "--seed-only") == 0
    assert "hello-world 2\n" in (latest / "seed.manifest").read_text()


def test_missing_snap_is_named(
    store: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = store
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    assert build_from_store(url, root, model, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "error: cannot resolve snaps" in err and "pc-kernel" in err
    assert not (tmp_path / "out" / "pc.img").exists()


def test_offline_without_local_files_names_snaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    args = ["snap", str(model), "--offline", "-O", str(tmp_path)]
    for f in TRUSTED_FILES:
        args += ["--trusted", str(f)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "cannot get these snaps offline" in err and "core18" in err


def _store_brand(root: Path, brand: str, since: str) -> tuple[object, bytes]:
    """A brand key and the brand's account + account-key signed by the store's root."""
    from ucimage.assertions import PrivateKey
    from ucimage.store.server.authority import Authority, account_key

    authority = Authority.load(root)
    key = PrivateKey.generate(2048)
    account = authority.sign_as_root(
        {
            "type": "account",
            "account-id": brand,
            "display-name": brand.title(),
            "username": brand,
            "validation": "verified",
            "timestamp": since,
        }
    )
    akey = account_key(authority.authority_id, brand, "models", key, authority.root_key,
                       since).encode()  # fmt: skip
    return key, account + b"\n" + akey


def test_brand_chain_comes_from_the_store(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Like snap prepare-image: the model's account-key and account are fetched from the
    store (no --assertion files) and written to the seed beside the model."""
    from ucimage.assertions import sign_json

    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for snap in snaps_uc18(tmp_path / "snaps"):
        push(url, root, snap, "18/stable" if snap.stem in ("pc", "pc-kernel") else "stable")
    # the brand key is valid from now on (the store's root key only since its init)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    key, chain = _store_brand(root, "storebrand", now)
    doc = {"type": "model", "authority-id": "storebrand", "brand-id": "storebrand",
           "series": "16", "timestamp": now, **MODEL_UC18}  # fmt: skip
    model = tmp_path / "store-brand.model"
    model.write_bytes(sign_json(json.dumps(doc), key).encode())  # type: ignore[arg-type]
    # not in the store yet: the model cannot be verified, and the error says what is missing
    assert build_from_store(url, root, model, tmp_path / "no", "--seed-only") == 1
    err = capsys.readouterr().err
    assert "cannot verify the model assertion" in err and "not found" in err
    (tmp_path / "brand.assert").write_bytes(chain)
    ucimage("store", "add-assertion", str(tmp_path / "brand.assert"), "--store", url,
            "--token-file", str(root / "upload-token"))  # fmt: skip
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out, "--seed-only") == 0
    seed = out / "image/var/lib/snapd/seed/assertions"
    names = {p.name for p in seed.iterdir()}
    assert "storebrand.account" in names
    assert f"{key.id}.account-key" in names  # type: ignore[attr-defined]
    # the store's root is trusted (--trusted): like Canonical's, it is not seeded
    assert "teststore.account" not in names
    # offline, --assertion files supply the chain instead of the store
    offline = tmp_path / "offline"
    snaps = [f"--snap={p}" for p in sorted((tmp_path / "snaps").glob("*.snap"))]
    args = ["--offline", "--assertion", str(tmp_path / "brand.assert"), "--seed-only", *snaps]
    assert build_from_store(url, root, model, offline, *args) == 0, capsys.readouterr().err
    assert "storebrand.account" in {
        p.name for p in (offline / "image/var/lib/snapd/seed/assertions").iterdir()
    }


def test_validation_set_latest_sequence(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unpinned validation set is enforced at the latest sequence the store has."""
    from ucimage.assertions import PrivateKey, sign_json

    url, root = store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for snap in snaps_uc18(tmp_path / "snaps"):
        push(url, root, snap, "18/stable" if snap.stem in ("pc", "pc-kernel") else "stable")
    push(url, root, make_snap(tmp_path / "v2", "hello-world", "app", base="core18", version="2"),
         "edge")  # fmt: skip
    hello = _snap_ids(url, root)["hello-world"]
    key = PrivateKey.from_pem((SNAP_SIGN / "keys" / "testkey1.private.pem").read_bytes())
    for seq, rev in (("1", "1"), ("2", "2")):
        doc = {
            "type": "validation-set", "authority-id": "testbrand", "account-id": "testbrand",
            "series": "16", "name": "vs1", "sequence": seq,
            "snaps": [{"name": "hello-world", "id": hello, "presence": "required",
                       "revision": rev}],
            "timestamp": "2024-01-01T00:00:00+00:00",
        }  # fmt: skip
        path = tmp_path / f"vs1-{seq}.assert"
        path.write_bytes(sign_json(json.dumps(doc), key).encode())
        ucimage("store", "add-assertion", str(path), "--store", url,
                "--token-file", str(root / "upload-token"))  # fmt: skip
    headers = dict(MODEL_UC18)
    headers["validation-sets"] = [{"account-id": "testbrand", "name": "vs1", "mode": "enforce"}]
    model = sign_model(headers, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(url, root, model, out, "--validation", "enforce", "--seed-only") == 0
    # sequence 2 pins hello-world to revision 2 (only on edge); unpinned: "name SEQ"
    assert (out / "seed.manifest").read_text() == (
        "testbrand/vs1 2\ncore18 1\npc 1\npc-kernel 1\nsnapd 1\n"
    )
    seed = out / "image/var/lib/snapd/seed"
    assert (seed / "snaps/hello-world_2.snap").exists()
    assert "16,testbrand,vs1,2.validation-set" in {p.name for p in (seed / "assertions").iterdir()}
