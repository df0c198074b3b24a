"""Assemble a UC16/18 pc image by hand, as docs/reference-platform.md §3.6 does.

Independent of ucimage's image builder on purpose: it proves the reference
snaps and ``ucimage boot`` work on their own, and gives the boot tests an image
when the builder is not what is under test. The seed has made-up (unsigned)
snap-declaration/snap-revision/account assertions that carry the right
digests, which is all the reference base's seed reader looks at, plus one
unasserted snap (snapd) to cover that path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ucimage.run import run

SECTOR = 512
ESP_START = 4096  # sectors (2 MiB)
ESP_SECTORS = 102400  # 50 MiB
WRITABLE_START = 106496  # sectors (52 MiB)
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
PUBLISHER_ID = "ucimagereferencepublisher000001"
PUBLISHER = "ucimage-ref"


@dataclass(frozen=True)
class HandmadeImage:
    path: Path
    seed_snaps: dict[str, str]  # name -> file name in seed/snaps
    revisions: dict[str, str]  # name -> revision as snap list shows it
    model: bytes
    writable_offset: int


def grubenv(values: dict[str, str]) -> bytes:
    body = "# GRUB Environment Block\n" + "".join(f"{k}={v}\n" for k, v in values.items())
    return body.encode().ljust(1024, b"#")


def _b64url_sha3(path: Path) -> str:
    digest = hashlib.sha3_384(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _fake_assertion(headers: dict[str, str]) -> str:
    text = "".join(f"{k}: {v}\n" for k, v in headers.items())
    return text + "sign-key-sha3-384: handmade\n\nAcLBcwQAAQoAHRYhBHANDMADE\n"


def assemble(
    snaps: dict[str, Path],
    model: bytes,
    out: Path,
    *,
    corrupt_kernel: bool = False,
    tamper_gadget: bool = False,
) -> HandmadeImage:
    """Build *out* (pc.img) from the reference snaps ``{pc, pc-kernel, core18, snapd}``."""
    work = out.parent / (out.name + ".work")
    if work.exists():
        shutil.rmtree(work)
    data = work / "writable"
    seed = data / "system-data" / "var" / "lib" / "snapd" / "seed"
    (seed / "snaps").mkdir(parents=True)
    (seed / "assertions").mkdir()
    snapdir = data / "system-data" / "var" / "lib" / "snapd" / "snaps"
    snapdir.mkdir()
    (data / "system-data" / "boot").mkdir()

    files: dict[str, str] = {}
    revisions: dict[str, str] = {}
    entries: list[str] = []
    assertions: list[str] = [
        _fake_assertion(
            {
                "type": "account",
                "authority-id": "handmade",
                "account-id": PUBLISHER_ID,
                "display-name": "ucimage reference",
                "timestamp": "2026-01-01T00:00:00Z",
                "username": PUBLISHER,
                "validation": "verified",
            }
        )
    ]
    for rev, name in enumerate(("snapd", "pc-kernel", "core18", "pc"), start=11):
        src = snaps[name]
        if name == "snapd":
            fname = f"{name}_x1.snap"
            shutil.copyfile(src, seed / "snaps" / fname)
            entries.append(f"  - name: {name}\n    unasserted: true\n    file: {fname}\n")
            revisions[name] = "x1"
        else:
            fname = f"{name}_{rev}.snap"
            shutil.copyfile(src, seed / "snaps" / fname)
            snap_id = (name.replace("-", "") + "id" * 32)[:32]
            channel = "18/stable" if name in ("pc", "pc-kernel") else "stable"
            entries.append(
                f"  - name: {name}\n    snap-id: {snap_id}\n    channel: {channel}\n"
                f"    file: {fname}\n"
            )
            assertions.append(
                _fake_assertion(
                    {
                        "type": "snap-declaration",
                        "authority-id": "handmade",
                        "series": "16",
                        "snap-id": snap_id,
                        "publisher-id": PUBLISHER_ID,
                        "snap-name": name,
                        "timestamp": "2026-01-01T00:00:00Z",
                    }
                )
            )
            assertions.append(
                _fake_assertion(
                    {
                        "type": "snap-revision",
                        "authority-id": "handmade",
                        "snap-sha3-384": _b64url_sha3(seed / "snaps" / fname),
                        "developer-id": PUBLISHER_ID,
                        "snap-id": snap_id,
                        "snap-revision": str(rev),
                        "snap-size": str((seed / "snaps" / fname).stat().st_size),
                        "timestamp": "2026-01-01T00:00:00Z",
                    }
                )
            )
            revisions[name] = str(rev)
        files[name] = fname
        if name in ("pc-kernel", "core18"):
            # snapd makes relative symlinks to the boot snaps
            (snapdir / fname).symlink_to(f"../seed/snaps/{fname}")
    (seed / "seed.yaml").write_text("snaps:\n" + "".join(entries))
    (seed / "assertions" / "model").write_bytes(model)
    (seed / "assertions" / "handmade.assertions").write_text("\n".join(assertions))

    if tamper_gadget:
        # one byte of the squashfs padding: the snap still mounts, but its
        # digest no longer matches its snap-revision
        gadget_snap = seed / "snaps" / files["pc"]
        blob = bytearray(gadget_snap.read_bytes())
        blob[-1] ^= 0xFF
        gadget_snap.write_bytes(bytes(blob))
    if corrupt_kernel:
        kernel = seed / "snaps" / files["pc-kernel"]
        blob = bytearray(kernel.read_bytes())
        blob[0:4096] = b"\xde\xad\xbe\xef" * 1024  # the squashfs superblock is gone
        kernel.write_bytes(bytes(blob))

    # gadget files, read straight out of the gadget snap
    gadget = work / "gadget"
    run(["unsquashfs", "-no-progress", "-d", gadget, snaps["pc"]])
    env = grubenv(
        {
            "snap_mode": "",
            "snap_core": files["core18"],
            "snap_kernel": files["pc-kernel"],
            "snap_try_core": "",
            "snap_try_kernel": "",
        }
    )
    (work / "grubenv").write_bytes(env)

    du = sum(p.lstat().st_size for p in data.rglob("*"))
    wr_sectors = ((du * 3 // 2 + 16 * 2**20) // 2**20) * 2048
    total = WRITABLE_START + wr_sectors + 2048
    out.unlink(missing_ok=True)
    with out.open("wb") as f:
        f.truncate(total * SECTOR)
    table = (
        "label: gpt\nunit: sectors\n"
        f'start=2048, size=2048, type={BIOS_BOOT_GUID}, name="BIOS Boot"\n'
        f'start={ESP_START}, size={ESP_SECTORS}, type={ESP_GUID}, name="EFI System"\n'
        f'start={WRITABLE_START}, size={wr_sectors}, type={LINUX_GUID}, name="writable"\n'
    )
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out], input=table.encode())
    with out.open("r+b") as f:
        f.write((gadget / "pc-boot.img").read_bytes()[:440])
        f.seek(92)
        f.write((2048).to_bytes(4, "little"))
        f.seek(2048 * SECTOR)
        f.write((gadget / "pc-core.img").read_bytes())
    run(
        [
            "mkfs.vfat",
            "-F",
            "32",
            "-S",
            "512",
            "-s",
            "1",
            "-n",
            "system-boot",
            f"--offset={ESP_START}",
            out,
            str(ESP_SECTORS // 2),
        ]
    )
    img = f"{out}@@{ESP_START * SECTOR}"
    mtools = {"MTOOLS_SKIP_CHECK": "1"}
    run(["mmd", "-i", img, "::EFI", "::EFI/boot", "::EFI/ubuntu"], env=mtools)
    for src, dest in (
        (gadget / "grubx64.efi", "::EFI/boot/grubx64.efi"),
        (gadget / "grubx64.efi", "::EFI/boot/bootx64.efi"),
        (gadget / "grub.cfg", "::EFI/ubuntu/grub.cfg"),
        (work / "grubenv", "::EFI/ubuntu/grubenv"),
    ):
        run(["mcopy", "-i", img, src, dest], env=mtools)
    mkfs: list[str | Path] = [
        "mkfs.ext4",
        "-q",
        "-F",
        "-b",
        "4096",
        "-L",
        "writable",
        "-d",
        data,
        "-E",
        f"offset={WRITABLE_START * SECTOR},nodiscard",
        out,
        f"{wr_sectors // 2}k",
    ]
    if os.getuid() != 0:
        mkfs = ["fakeroot", *mkfs]
    run(mkfs)
    run(["sfdisk", "--verify", out])
    shutil.rmtree(work)
    return HandmadeImage(
        path=out,
        seed_snaps=files,
        revisions=revisions,
        model=model,
        writable_offset=WRITABLE_START * SECTOR,
    )
