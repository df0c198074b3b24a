"""Build the reference platform's four snaps from Debian packages.

Plan, then execute: :func:`plan_build` resolves the Debian package versions
(from the local apt metadata, no network) and every path into one frozen
:class:`ReferencePlan`; :func:`build` then runs named, timed steps that only
carry it out:

``fetch``     ``apt-get download`` the kernel, busybox and GRUB packages (cached)
``unpack``    ``dpkg-deb -x`` them (cached; the kernel keeps only what we use)
``initramfs`` busybox + our ``/init`` + the kernel modules it loads, as gzip'd newc
``grub``      ``grub-mkimage`` core.img/boot.img for BIOS and an EFI GRUB, patched
              like the Ubuntu Core pc gadget's Makefile does
``stage``     one directory per snap from ``reference/`` plus the built files
``pack``      :func:`ucimage.snaps.pack` each directory into ``OUT/*.snap``

The sources (gadget.yaml, grub.cfg, init scripts, module list, model JSON) live
in the repository's top-level ``reference/`` directory.
"""

from __future__ import annotations

import json
import logging
import lzma
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ucimage import __version__
from ucimage.errors import UcimageError
from ucimage.reference import debian
from ucimage.reference.cpio import gzip_initramfs
from ucimage.reference.debian import DebianPackage
from ucimage.run import cache_home, require_tool, run, run_text, source_date_epoch

log = logging.getLogger(__name__)

#: snaps of the platform, in the order they are built
SNAP_NAMES: tuple[str, ...] = ("pc", "pc-kernel", "core18", "snapd")

#: SOURCE_DATE_EPOCH used when the environment sets none: the snaps are
#: reproducible by default, so pushing them twice gives the same digests
DEFAULT_SOURCE_DATE_EPOCH = 1704067200  # 2024-01-01T00:00:00Z

#: GRUB modules built into core.img / grubx64.efi (the loopback-into-squashfs path)
GRUB_MODULES: tuple[str, ...] = (
    "part_gpt",
    "fat",
    "ext2",
    "squash4",
    "xzio",
    "gzio",
    "lzopio",
    "loopback",
    "normal",
    "configfile",
    "linux",
    "boot",
    "echo",
    "test",
    "true",
    "loadenv",
    "search",
    "search_label",
    "search_fs_uuid",
    "search_fs_file",
    "cat",
    "halt",
    "reboot",
    "serial",
    "terminal",
    "sleep",
    "minicmd",
)
#: BIOS core.img needs the BIOS disk driver; EFI GRUB needs a video driver (else
#: "error: no suitable video mode found")
GRUB_BIOS_MODULES: tuple[str, ...] = ("biosdisk", *GRUB_MODULES)
GRUB_EFI_MODULES: tuple[str, ...] = (*GRUB_MODULES, "efi_gop")
#: the ESP is GPT partition 2 of the disk GRUB booted from (the pc gadget layout)
GRUB_BIOS_PREFIX = "(,gpt2)/EFI/ubuntu"
GRUB_EFI_PREFIX = "/EFI/ubuntu"
#: BIOS Boot starts at 1 MiB; core.img's second sector is at this absolute LBA
CORE_IMG_REST_LBA = 2049


#: kernel meta-packages tried in order, with the prefix of the package holding
#: the modules when they are not in the kernel image package
KERNEL_FLAVOURS: tuple[tuple[str, str | None], ...] = (
    ("linux-image-amd64", None),  # Debian
    ("linux-image-generic", "linux-modules-"),  # Ubuntu
)
#: module file suffixes we can load (busybox insmod needs them decompressed)
MODULE_SUFFIXES: tuple[str, ...] = ("", ".xz", ".zst")


class ReferenceBuildError(UcimageError):
    """The reference platform cannot be built."""

    code = "reference-build"


def repo_reference_dir() -> Path:
    """The ``reference/`` sources: ``$UCIMAGE_REFERENCE_DIR`` or the checkout's."""
    env = os.environ.get("UCIMAGE_REFERENCE_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "reference"
    if not (path / "pc" / "meta" / "gadget.yaml").is_file():
        raise ReferenceBuildError(
            f"reference platform sources not found in {path}",
            hint="run from a clone of the ucimage repository or set UCIMAGE_REFERENCE_DIR",
        )
    return path


@dataclass(frozen=True)
class ReferencePlan:
    """Everything :func:`build` will do, resolved up front."""

    sources: Path
    out_dir: Path
    cache_dir: Path
    kernel: DebianPackage
    kernel_modules: DebianPackage | None  # Ubuntu ships modules apart (linux-modules-*)
    busybox: DebianPackage
    grub_pc: DebianPackage
    grub_efi: DebianPackage
    kernel_release: str  # `uname -r`, e.g. 6.1.0-56-amd64
    modules: tuple[str, ...]  # relative to lib/modules/<release>/kernel/
    versions: dict[str, str] = field(hash=False)  # snap name -> version
    source_date_epoch: int = DEFAULT_SOURCE_DATE_EPOCH
    #: trusted root assertions the snapd stand-in carries (snapd's built-in roots)
    trusted: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        for key in ("sources", "out_dir", "cache_dir"):
            doc[key] = str(doc[key])
        doc["trusted"] = [str(p) for p in self.trusted]
        return doc


@dataclass(frozen=True)
class ReferenceSnaps:
    """The built snaps, by name, plus the step timings."""

    snaps: dict[str, Path]
    timings: dict[str, float]


def read_module_list(path: Path) -> tuple[str, ...]:
    modules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            modules.append(line)
    return tuple(modules)


def plan_build(
    out_dir: Path,
    *,
    sources: Path | None = None,
    cache_dir: Path | None = None,
    epoch: int | None = None,
    apt_update: bool = False,
    trusted: tuple[Path, ...] = (),
) -> ReferencePlan:
    """Resolve package versions and paths; fails before any download.

    With *apt_update*, a package apt does not know makes us run
    ``apt-get update`` once (as root) and try again: fresh containers often
    ship without package lists.
    """
    src = sources if sources is not None else repo_reference_dir()
    for name in SNAP_NAMES:
        if not (src / name / "meta" / "snap.yaml").is_file():
            raise ReferenceBuildError(f"reference source {src / name}/meta/snap.yaml is missing")
    for path in trusted:
        try:
            head = path.read_bytes()[:64]
        except OSError as exc:
            raise ReferenceBuildError(
                f"cannot read trusted assertions {str(path)!r}: {exc}"
            ) from exc
        if not head.startswith(b"type: "):
            raise ReferenceBuildError(
                f"{str(path)!r} is not an assertion file",
                hint="pass a store's root.assert (account + account-key)",
            )
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "grub-mkimage", "mksquashfs"):
        require_tool(tool)
    tools = ["busybox-static", "grub-pc-bin", "grub-efi-amd64-bin"]
    metas = [meta for meta, _ in KERNEL_FLAVOURS]
    found = debian.resolve_available([*metas, *tools])
    incomplete = bool(set(tools) - set(found)) or not set(metas) & set(found)
    if incomplete and apt_update and os.geteuid() == 0:
        log.warning("apt lacks some reference packages: running apt-get update")
        run(["apt-get", "update", "-qq"], timeout=600)
        found = debian.resolve_available([*metas, *tools])
    debian.resolve_many([t for t in tools if t not in found])  # raises for unknown tools
    flavour = next(((m, mods) for m, mods in KERNEL_FLAVOURS if m in found), None)
    if flavour is None:
        raise debian.DebianPackageError(
            f"apt knows none of the kernel meta-packages {', '.join(metas)}",
            hint="run 'apt-get update' (as root) on Debian or Ubuntu",
        )
    meta, modules_prefix = flavour
    kernel = debian.resolve(debian.metapackage_target(found[meta][1], "linux-image-", meta))
    release = kernel.name.removeprefix("linux-image-")
    kernel_modules = debian.resolve(modules_prefix + release) if modules_prefix else None
    busybox = found["busybox-static"][0]
    grub_pc = found["grub-pc-bin"][0]
    grub_efi = found["grub-efi-amd64-bin"][0]
    versions = {
        "pc": "",  # from reference/pc/meta/snap.yaml as written
        "pc-kernel": kernel.upstream_version,
        "core18": busybox.upstream_version,
        "snapd": f"{__version__}-ucimage",
    }
    if epoch is None:
        epoch = source_date_epoch(DEFAULT_SOURCE_DATE_EPOCH)
    return ReferencePlan(
        sources=src.resolve(),
        out_dir=out_dir.resolve(),
        cache_dir=(cache_dir or cache_home() / "reference").resolve(),
        kernel=kernel,
        kernel_modules=kernel_modules,
        busybox=busybox,
        grub_pc=grub_pc,
        grub_efi=grub_efi,
        kernel_release=release,
        modules=read_module_list(src / "pc-kernel" / "modules.list"),
        versions=versions,
        source_date_epoch=epoch if epoch is not None else DEFAULT_SOURCE_DATE_EPOCH,
        trusted=tuple(p.resolve() for p in trusted),
    )


class _Steps:
    """Runs named steps, logging and timing each."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        self.progress(f"[{name}] {what}")
        start = time.monotonic()
        yield
        took = time.monotonic() - start
        self.timings[name] = round(took, 2)
        log.info("step %s took %.2fs", name, took)


def _unpacked(plan: ReferencePlan, pkg: DebianPackage, keep: list[str] | None = None) -> Path:
    deb = plan.cache_dir / "debs" / pkg.deb_name
    return debian.unpack(deb, plan.cache_dir / "unpacked" / deb.name.removesuffix(".deb"), keep)


def _kernel_keep(plan: ReferencePlan) -> list[str]:
    rel = plan.kernel_release
    return [
        f"boot/vmlinuz-{rel}",
        f"boot/config-{rel}",
        f"lib/modules/{rel}/modules.builtin",
        *(
            f"lib/modules/{rel}/kernel/{m}{suffix}"
            for m in plan.modules
            for suffix in MODULE_SUFFIXES
        ),
    ]


@dataclass(frozen=True)
class ModuleSource:
    """Where a module of modules.list comes from: a file, or built into the kernel."""

    name: str  # as in modules.list, e.g. fs/ext4/ext4.ko
    path: Path | None  # None: built in, nothing to load
    compression: str = ""  # "", "xz" or "zst"


def find_modules(trees: list[Path], release: str, modules: tuple[str, ...]) -> list[ModuleSource]:
    """Locate each module in the unpacked kernel packages (.ko, .ko.xz, .ko.zst or built in)."""
    builtin: set[str] = set()
    for tree in trees:
        listing = tree / "lib" / "modules" / release / "modules.builtin"
        if listing.is_file():
            builtin.update(
                line.strip().removeprefix("kernel/") for line in listing.read_text().splitlines()
            )
    found: list[ModuleSource] = []
    missing: list[str] = []
    for module in modules:
        source: ModuleSource | None = None
        for tree in trees:
            base = tree / "lib" / "modules" / release / "kernel" / module
            for suffix in MODULE_SUFFIXES:
                candidate = base.with_name(base.name + suffix)
                if candidate.is_file():
                    source = ModuleSource(module, candidate, suffix.lstrip("."))
                    break
            if source:
                break
        if source is None and module in builtin:
            source = ModuleSource(module, None)
        if source is None:
            missing.append(module)
        else:
            found.append(source)
    if missing:
        raise ReferenceBuildError(
            f"kernel {release} has neither a file nor a built-in for: {', '.join(missing)}",
            hint="update reference/pc-kernel/modules.list for this kernel",
        )
    return found


def module_bytes(source: ModuleSource) -> bytes:
    """The module as busybox insmod needs it: uncompressed."""
    assert source.path is not None
    if source.compression == "xz":
        return lzma.decompress(source.path.read_bytes())
    if source.compression == "zst":
        return run(["zstd", "-dc", source.path]).stdout
    return source.path.read_bytes()


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    path.chmod(mode)


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)


def _snap_yaml(plan: ReferencePlan, name: str) -> str:
    text = (plan.sources / name / "meta" / "snap.yaml").read_text()
    return text.replace("@VERSION@", plan.versions.get(name, ""))


def build_initramfs(
    plan: ReferencePlan, kernel_trees: list[Path], busybox_tree: Path, dest: Path
) -> None:
    """gzip'd newc initramfs: busybox, ``/init`` and the modules in load order.

    Modules built into the kernel are left out of ``load.list``.
    """
    root = dest.parent / "initramfs-root"
    if root.exists():
        shutil.rmtree(root)
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox_tree / "bin" / "busybox", root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    for d in ("dev", "proc", "sys", "run", "root", "writable"):
        (root / d).mkdir()
    shutil.copy2(plan.sources / "pc-kernel" / "initramfs" / "init", root / "init")
    (root / "init").chmod(0o755)
    sources = find_modules(kernel_trees, plan.kernel_release, plan.modules)
    loaded = [src for src in sources if src.path is not None]
    for src in loaded:
        _write(root / "lib" / "modules" / src.name, module_bytes(src))
    _write(root / "lib" / "modules" / "load.list", "".join(f"{m.name}\n" for m in loaded))
    _write(dest, gzip_initramfs(root, plan.source_date_epoch))
    shutil.rmtree(root)


def build_grub(plan: ReferencePlan, grub_pc_tree: Path, grub_efi_tree: Path, dest: Path) -> None:
    """pc-boot.img, pc-core.img and grubx64.efi into *dest* (the gadget dir)."""
    bios_dir = grub_pc_tree / "usr" / "lib" / "grub" / "i386-pc"
    efi_dir = grub_efi_tree / "usr" / "lib" / "grub" / "x86_64-efi"
    # boot.img: the first 440 bytes, with the boot-drive check at 0x66 NOPed
    # (as the UC pc gadget does) so it works with any BIOS drive number
    boot = bytearray((bios_dir / "boot.img").read_bytes()[:440])
    boot[0x66:0x68] = b"\x90\x90"
    _write(dest / "pc-boot.img", bytes(boot))
    core = dest / "pc-core.img"
    run(
        [
            "grub-mkimage",
            "-d",
            bios_dir,
            "-O",
            "i386-pc",
            "-o",
            core,
            "-p",
            GRUB_BIOS_PREFIX,
            *GRUB_BIOS_MODULES,
        ]
    )
    # diskboot.img's blocklist (at 0x1f4) points to the rest of core.img; BIOS
    # Boot sits at LBA 2048 so the rest starts at 2049
    data = bytearray(core.read_bytes())
    data[500:504] = CORE_IMG_REST_LBA.to_bytes(4, "little")
    _write(core, bytes(data))
    run(
        [
            "grub-mkimage",
            "-d",
            efi_dir,
            "-O",
            "x86_64-efi",
            "-o",
            dest / "grubx64.efi",
            "-p",
            GRUB_EFI_PREFIX,
            *GRUB_EFI_MODULES,
        ]
    )
    (dest / "grubx64.efi").chmod(0o644)


def _stage_base(plan: ReferencePlan, busybox_tree: Path, dest: Path) -> None:
    for d in ("dev", "proc", "sys", "run", "tmp", "writable", "etc", "var/lib/snapd", "mnt"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    busybox = dest / "bin" / "busybox"
    shutil.copy2(busybox_tree / "bin" / "busybox", busybox)
    busybox.chmod(0o755)
    applets = run_text([busybox, "--list"]).split()
    for applet in applets:
        if applet != "busybox" and "/" not in applet:
            (dest / "bin" / applet).symlink_to("busybox")
    (dest / "sbin").mkdir(exist_ok=True)
    (dest / "usr").mkdir(exist_ok=True)
    (dest / "usr" / "bin").symlink_to("../bin")
    (dest / "usr" / "sbin").symlink_to("../bin")
    shutil.copy2(plan.sources / "core18" / "sbin" / "init", dest / "sbin" / "init")
    (dest / "sbin" / "init").chmod(0o755)
    _write(
        dest / "etc" / "os-release",
        'NAME="ucimage reference core18"\nID=ucimage-reference\n'
        f'VERSION_ID="{plan.versions["core18"]}"\n',
    )


def stage(plan: ReferencePlan, trees: dict[str, Path], work: Path) -> dict[str, Path]:
    """Assemble each snap's directory under *work*; returns name -> directory."""
    dirs: dict[str, Path] = {}
    for name in SNAP_NAMES:
        d = work / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        dirs[name] = d
    # gadget: everything under reference/pc plus the GRUB images
    _copy_tree(plan.sources / "pc", dirs["pc"])
    build_grub(plan, trees["grub-pc"], trees["grub-efi"], dirs["pc"])
    # kernel: Debian's vmlinuz and our initramfs
    k = dirs["pc-kernel"]
    _write(k / "meta" / "snap.yaml", _snap_yaml(plan, "pc-kernel"))
    shutil.copy2(trees["kernel"] / "boot" / f"vmlinuz-{plan.kernel_release}", k / "kernel.img")
    (k / "kernel.img").chmod(0o644)
    kernel_trees = [trees["kernel"]] + ([trees["modules"]] if "modules" in trees else [])
    build_initramfs(plan, kernel_trees, trees["busybox"], k / "initrd.img")
    # base
    b = dirs["core18"]
    _write(b / "meta" / "snap.yaml", _snap_yaml(plan, "core18"))
    _stage_base(plan, trees["busybox"], b)
    # snapd stand-in
    s = dirs["snapd"]
    _write(s / "meta" / "snap.yaml", _snap_yaml(plan, "snapd"))
    _write(s / "usr" / "lib" / "snapd" / "info", f"VERSION={plan.versions['snapd']}\n")
    for i, path in enumerate(plan.trusted):
        _write(
            s / "usr" / "lib" / "snapd" / "trusted" / f"{i:02d}-{path.stem}.assert",
            path.read_bytes(),
        )
    return dirs


def build(plan: ReferencePlan, progress: Callable[[str], None] | None = None) -> ReferenceSnaps:
    """Carry out *plan*; returns the packed snaps."""
    from ucimage.snaps import pack

    say = progress or (lambda msg: log.info("%s", msg))
    steps = _Steps(say)
    debs = plan.cache_dir / "debs"
    packages = {
        "kernel": plan.kernel,
        "busybox": plan.busybox,
        "grub-pc": plan.grub_pc,
        "grub-efi": plan.grub_efi,
    }
    if plan.kernel_modules is not None:
        packages["modules"] = plan.kernel_modules
    with steps.step("fetch", f"Debian packages into {debs}"):
        for pkg in packages.values():
            debian.download(pkg, debs)
    trees: dict[str, Path] = {}
    with steps.step("unpack", "dpkg-deb -x (cached)"):
        for key, pkg in packages.items():
            keep = _kernel_keep(plan) if key in ("kernel", "modules") else None
            trees[key] = _unpacked(plan, pkg, keep)
    work = plan.out_dir / ".work"
    with steps.step("stage", "initramfs, GRUB images and snap directories"):
        dirs = stage(plan, trees, work)
    snaps: dict[str, Path] = {}
    with steps.step("pack", f"mksquashfs into {plan.out_dir}"):
        for name, d in dirs.items():
            snaps[name] = pack(d, plan.out_dir, source_date_epoch_value=plan.source_date_epoch)
            say(f"  {snaps[name].name} ({snaps[name].stat().st_size:,} bytes)")
    shutil.rmtree(work, ignore_errors=True)
    manifest = {name: path.name for name, path in snaps.items()}
    (plan.out_dir / "reference-snaps.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return ReferenceSnaps(snaps=snaps, timings=steps.timings)
