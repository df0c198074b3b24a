"""Seeds written by the real snapd (Debian's ``snap prepare-image``), read by inspect.

``snap prepare-image`` runs offline against a loopback stub that answers 404 to every
store request (``shared/docs/image-building.md`` §2.4); with
``UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL=1`` it writes the seed but leaves the model
out (our test root is not one it trusts), so the test adds the model file, then lays the
tree out as ubuntu-image does (UC16/18: ``image/*`` under ``system-data/`` of writable,
``boot/grub/*`` to ``EFI/ubuntu/`` of the ESP; UC20+: ``system-seed/`` is ubuntu-seed).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.build_snaps import snaps_uc18, snaps_uc20
from tests.integration.test_inspect_built import make_root, model18, model20
from tests.integration.test_inspect_images import (
    BIOS_TYPE,
    ESP_TYPE,
    LINUX_TYPE,
    make_disk,
    put_ext4,
    put_vfat,
    sh,
)
from ucimage.cli.main import main
from ucimage.run import which

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(which("snap") is None, reason="Debian's snapd (the oracle) is missing"),
]


class _NotFound(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = json.dumps({"error-list": [{"code": "not-found", "message": "not found"}]})
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stub_store() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def prepare_image(stub: str, model: Path, snaps: list[Path], out: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(out.parent),
        "SNAPPY_FORCE_API_URL": stub,
        "SNAPPY_FORCE_SAS_URL": stub + "v2/",
        "UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL": "1",
    }
    args = ["snap", "prepare-image", "--arch", "amd64", str(model), str(out)]
    for snap in snaps:
        args += ["--snap", str(snap)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def oracle(stub_store: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("snapd-oracle")
    key, root = make_root(base)
    result: dict[str, Any] = {"root": root}

    # UC18
    m18 = model18(key, base)
    out = base / "prep18"
    prepare_image(stub_store, m18, snaps_uc18(base / "snaps18"), out)
    writable = base / "writable"
    shutil.copytree(out / "image", writable / "system-data", symlinks=True, ignore=_boot)
    (writable / "system-data" / "boot").mkdir()
    shutil.copyfile(m18, writable / "system-data/var/lib/snapd/seed/assertions/model")
    esp = base / "esp"
    shutil.copytree(out / "image/boot/grub", esp / "EFI/ubuntu")
    image = base / "uc18.img"
    make_disk(
        image,
        (4096 + 69632 + 32768 + 2048) * 512,
        "label: gpt\n"
        f'start=2048, size=2048, type={BIOS_TYPE}, name="BIOS Boot"\n'
        f'start=4096, size=69632, type={ESP_TYPE}, name="EFI System"\n'
        f'start=73728, size=32768, type={LINUX_TYPE}, name="writable"\n',
    )
    put_vfat(image, 4096, 69632, "system-boot", esp)
    put_ext4(image, 73728, 32768, "writable", writable)
    result.update(uc18=image, uc18_model=m18, uc18_prep=out)

    # UC20 (grade dangerous: local snaps allowed)
    m20 = model20(key, base)
    out = base / "prep20"
    prepare_image(stub_store, m20, snaps_uc20(base / "snaps20"), out)
    seed = out / "system-seed"
    (label,) = [p.name for p in (seed / "systems").iterdir()]
    shutil.copyfile(m20, seed / "systems" / label / "model")
    image = base / "uc20.img"
    make_disk(
        image,
        (4096 + 69632 + 2048) * 512,
        "label: gpt\n"
        f'start=2048, size=2048, type={BIOS_TYPE}, name="BIOS Boot"\n'
        f'start=4096, size=69632, type={ESP_TYPE}, name="ubuntu-seed"\n',
    )
    put_vfat(image, 4096, 69632, "ubuntu-seed", seed)
    result.update(uc20=image, uc20_model=m20, uc20_label=label, uc20_prep=out)
    return result


def _boot(directory: str, names: list[str]) -> list[str]:
    return ["boot"] if Path(directory).name == "image" else []


def inspect_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    rc = main(["inspect", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_uc18_seed_written_by_snapd(
    oracle: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc = inspect_json(
        capsys, "--verify", "--trusted", str(oracle["root"]), str(oracle["uc18"])
    )
    assert rc == 0, doc["verify"]
    seed = doc["seed"]
    assert seed["layout"] == "uc16" and seed["problems"] == []
    assert seed["snap-list"] == (
        "Name         Version  Rev  Tracking  Publisher  Notes\n"
        "core18       1.0      x1   -         -          base\n"
        "hello-world  1.0      x1   -         -          -\n"
        "pc           1.0      x1   -         -          gadget\n"
        "pc-kernel    1.0      x1   -         -          kernel\n"
        "snapd        1.0      x1   -         -          snapd\n"
    )
    # snapd's own grubenv, read by us and by grub-editenv
    (env,) = doc["bootenv"]
    listed = sh("grub-editenv", oracle["uc18_prep"] / "image/boot/grub/grubenv", "list")
    assert env["vars"] == dict(line.split("=", 1) for line in listed.decode().splitlines())
    assert env["vars"]["snap_kernel"] == "pc-kernel_x1.snap"
    bootenv_checks = [c for c in doc["verify"]["checks"] if c["kind"] == "bootenv"]
    assert [c["status"] for c in bootenv_checks] == ["ok", "ok"]


def test_uc20_seed_written_by_snapd(
    oracle: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc = inspect_json(
        capsys, "--verify", "--trusted", str(oracle["root"]), str(oracle["uc20"])
    )
    assert rc == 0, doc["verify"]
    seed = doc["seed"]
    label = oracle["uc20_label"]
    assert (seed["layout"], seed["system-label"]) == ("uc20", label)
    assert seed["problems"] == []
    rows = {s["name"]: s for s in seed["snaps"]}
    assert sorted(rows) == ["core20", "hello-world", "pc", "pc-kernel", "snapd"]
    assert rows["pc-kernel"]["file"] == f"/systems/{label}/snaps/pc-kernel_1.0.snap"
    assert all(s["unasserted"] and s["revision"] == "x1" for s in rows.values())
    envs = {e["path"]: e["vars"] for e in doc["bootenv"]}
    assert envs["/EFI/ubuntu/grubenv"]["snapd_recovery_system"] == label
    assert envs[f"/systems/{label}/grubenv"]["snapd_recovery_kernel"] == rows["pc-kernel"]["file"]
    assert {c["status"] for c in doc["verify"]["checks"] if c["kind"] == "bootenv"} == {"ok"}
