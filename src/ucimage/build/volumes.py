"""Gadget volumes → disk images: layout, content mapping and the disk writer.

For every volume that produces an image, the gadget layout
(:func:`ucimage.gadget.lay_out_volume`) is turned into a
:class:`ucimage.image.spec.DiskSpec`:

* system-data (UC16/18) gets the staged writable root, system-seed (UC20+)
  the staged seed tree, as whole directories (the filesystem is made from them
  directly: no extra copy);
* the UC16/18 system-boot partition gets the bootloader files prepared with
  the seed (grub → ``EFI/ubuntu/``, u-boot/piboot → the root) and then the
  gadget's content (gadget files win, as in ubuntu-image); lk's prepared
  files (UC16/18 ``snapbootsel.bin``, ``boot.img``; UC20+ the seed's
  ``boot/lk/snaprecoverysel.bin`` and recovery ``boot.img``) stand in for the
  gadget's bare ``image:`` files of the same name, and the UC20+ recovery boot
  image partition the prepared env assigns to the seed's system gets the
  recovery ``boot.img`` when the gadget gives it no content;
* bare content and ``offset-write`` values become raw writes.

The image is written as ``.<volume>.img.partial`` and renamed when complete.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ucimage.errors import UcimageError

if TYPE_CHECKING:
    from ucimage.build.pipeline import ImageBuild
    from ucimage.gadget import GadgetInfo, LaidOutStructure, VolumeLayout


class VolumeBuildError(UcimageError):
    code = "volume-build"


def load_and_validate(build: ImageBuild) -> GadgetInfo:
    """The unpacked gadget, loaded and checked against the model.

    Loaded once per build (load_gadget, the seed, the layouts and the disk all
    ask); :meth:`ImageBuild.step_load_gadget` forgets it when it unpacks again.
    """
    gadget: GadgetInfo | None = build.gadget_info
    if gadget is None:
        gadget = build.gadget_info = _load_and_validate(build)
    return gadget


def _load_and_validate(build: ImageBuild) -> GadgetInfo:
    from ucimage.gadget import ModelContext, load_gadget

    info = build.info
    gadget = load_gadget(build.gadget_dir(), model=ModelContext(has_modes=info.uc20))
    for warning in getattr(gadget, "warnings", ()):
        build.progress.warning(str(warning))
    build.opts.image_size.check_volumes(list(gadget.volumes))
    seeded = any(v.seeded for v in gadget.volumes.values())
    if info.uc20 and not seeded:
        raise VolumeBuildError(
            "model requires system-seed structure, but none was found",
            hint="a UC20+ model needs a gadget with a system-seed role",
        )
    if not info.uc20 and seeded:
        raise VolumeBuildError("model does not support the system-seed role")
    if not any(v.produces_image for v in gadget.volumes.values()):
        raise VolumeBuildError("no volume in the gadget.yaml produces an image")
    return gadget


def _du(root: Path) -> int:
    """Bytes a tree takes like ``du -s -B1``: files by 4 KiB blocks, plus directories."""
    total = 0
    for dirpath, _dirs, filenames in os.walk(root):
        total += 4096
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += -(-st.st_size // 4096) * 4096
    return total


def _kernel_dir(build: ImageBuild, gadget: GadgetInfo) -> Path | None:
    """Unpack only kernel.yaml and the assets the gadget refers to."""
    refs = {
        ref[0]
        for v in gadget.volumes.values()
        for s in v.structures
        for c in s.content
        if (ref := c.kernel_ref) is not None
    }
    if not refs:
        return None
    from ucimage.gadget.parse import load_yaml
    from ucimage.snaps import SnapFile

    dest = build.workdir / "unpack" / "kernel"
    if (dest / "meta" / "kernel.yaml").is_file():
        return dest  # extracted by an earlier step of this build
    kernel = SnapFile(build.snap_path("kernel"))
    kernel_yaml = kernel.read_file_or_none("meta/kernel.yaml")
    if kernel_yaml is None:
        raise VolumeBuildError(
            "the gadget refers to $kernel: assets but the kernel has no kernel.yaml"
        )
    data = load_yaml(kernel_yaml.decode(), "meta/kernel.yaml")
    assets = data.get("assets", {}) if isinstance(data, dict) else {}
    paths = ["meta/kernel.yaml"]
    for name in refs:
        asset = assets.get(name) if isinstance(assets, dict) else None
        if isinstance(asset, dict):
            paths += [str(p).rstrip("/") for p in asset.get("content", [])]
    kernel.extract(dest, paths)
    return dest


def layouts(build: ImageBuild) -> list[VolumeLayout]:
    from ucimage.gadget import GadgetError, lay_out_volume, system_data_size_for_content

    gadget = load_and_validate(build)
    kernel_dir = _kernel_dir(build, gadget)
    out = []
    for index, (name, volume) in enumerate(gadget.volumes.items()):
        if not volume.produces_image:
            build.progress.info(f"volume {name}: no image for schema {volume.schema}")
            continue
        system_data_size = None
        if not build.info.uc20 and any(s.role == "system-data" for s in volume.structures):
            system_data_size = system_data_size_for_content(
                _payload_bytes(build), build.opts.sector_size
            )
        requested = build.opts.image_size.for_volume(name, index)
        try:
            layout = lay_out_volume(
                volume,
                sector_size=build.opts.sector_size,
                image_size=requested,
                system_data_size=system_data_size,
                gadget_dir=build.gadget_dir(),
                kernel_dir=kernel_dir,
            )
        except GadgetError as exc:
            if requested is None or "smaller than minimum required size" not in exc.message:
                raise
            # ubuntu-image warns and builds the smallest image that fits
            if exc.message not in build.said:
                build.said.add(exc.message)
                build.progress.warning(f"ignoring {exc.message}")
            layout = lay_out_volume(
                volume,
                sector_size=build.opts.sector_size,
                system_data_size=system_data_size,
                gadget_dir=build.gadget_dir(),
                kernel_dir=kernel_dir,
            )
        out.append(layout)
    return out


def stage_seed_content(build: ImageBuild, seed_root: Path) -> None:
    """Copy the gadget's system-seed content into the UC20 seed tree (before seeding)."""
    from ucimage.image.content import stage

    gadget = load_and_validate(build)
    resolver = _gadget_resolver(build, _kernel_dir(build, gadget))
    for layout in layouts_without_sizes(build):
        for structure in layout.structures:
            if structure.role == "system-seed":
                stage(resolver.filesystem_content(structure), seed_root)


def layouts_without_sizes(build: ImageBuild) -> list[VolumeLayout]:
    from ucimage.gadget import lay_out_volume

    gadget = load_and_validate(build)
    kernel_dir = _kernel_dir(build, gadget)
    return [
        lay_out_volume(
            v,
            sector_size=build.opts.sector_size,
            gadget_dir=build.gadget_dir(),
            kernel_dir=kernel_dir,
        )
        for v in gadget.volumes.values()
        if v.produces_image
    ]


def _gadget_resolver(build: ImageBuild, kernel_dir: Path | None) -> Any:
    from ucimage.image.adapter import GadgetContentResolver

    return GadgetContentResolver(gadget_dir=build.gadget_dir(), kernel_dir=kernel_dir)


def _deferred(build: ImageBuild) -> list[tuple[Path, str]]:
    saved = build.state.results.get("write_seed", {}).get("deferred") or []
    return [(Path(src), str(rel)) for src, rel in saved]


def _root_content(build: ImageBuild) -> Path | tuple[Any, ...]:
    """The staged root, plus the snaps that could not be hard-linked into it."""
    from ucimage.image.spec import ContentEntry

    deferred = _deferred(build)
    if not deferred:
        return build.root_dir()
    entries = [ContentEntry(source=build.root_dir(), target=PurePosixPath("/"), contents_only=True)]
    for src, rel in deferred:
        entries.append(ContentEntry(source=src, target=PurePosixPath("/" + rel)))
    return tuple(entries)


def _is_system_boot(structure: LaidOutStructure) -> bool:
    return structure.role == "system-boot" or (
        not structure.role and structure.label == "system-boot"
    )


def _boot_entries(build: ImageBuild) -> list[Any]:
    """UC16/18: bootloader files snapd would have put under image/boot/."""
    from ucimage.image.spec import ContentEntry

    boot = build.boot_dir()
    entries = []
    for sub, target in (("grub", "/EFI/ubuntu"), ("uboot", "/"), ("piboot", "/")):
        if (boot / sub).is_dir():
            entries.append(
                ContentEntry(
                    source=boot / sub,
                    target=PurePosixPath(target),
                    contents_only=True,
                    into_directory=False,
                )
            )
    return entries


class BuildContentResolver:
    """Content of each structure: the gadget's, plus what the build staged.

    system-data (UC16/18) and system-seed (UC20+) get the staged tree (the seed;
    the UC20 seed already holds the gadget's system-seed content); the UC16/18
    system-boot partition gets the bootloader files first, then the gadget's.
    """

    def __init__(self, build: ImageBuild, kernel_dir: Path | None) -> None:
        self.build = build
        self.gadget = _gadget_resolver(build, kernel_dir)

    def filesystem_content(self, structure: LaidOutStructure) -> Path | tuple[Any, ...]:
        build = self.build
        uc20 = build.info.uc20
        if structure.role == "system-seed" or (structure.role == "system-data" and not uc20):
            return _root_content(build)
        entries = tuple(self.gadget.filesystem_content(structure))
        if _is_system_boot(structure) and not uc20:
            return (*_boot_entries(build), *entries)
        return entries

    def image_file(self, structure: LaidOutStructure, content: Any) -> Path:
        # lk: snapd prepares the envs and boot images as files to flash into the bare
        # partitions. UC16/18: ubuntu-image copies image/boot/lk/* (snapbootsel.bin
        # with the boot variables, the kernel's boot.img) over the gadget's own files.
        # UC20+: they are on the seed (snapd's lk envBackstore at prepare-image time):
        # the recovery env and the recovery kernel's boot image, same rule
        name = PurePosixPath(content.source)
        if len(name.parts) == 1:
            lk_dir = _prepared_lk_dir(self.build)
            if lk_dir is not None and (lk_dir / name.name).is_file():
                return lk_dir / name.name
        path: Path = self.gadget.image_file(structure, content)
        return path


def _prepared_lk_dir(build: ImageBuild) -> Path | None:
    """Where the seed writer put the lk files to flash, if it did."""
    if not build.info.uc20:
        return build.boot_dir() / "lk"
    if build.state.results.get("write_seed", {}).get("bootloader") != "lk":
        return None
    return build.root_dir() / "boot" / "lk"


def _lk_recovery_boot_images(build: ImageBuild, layout: VolumeLayout) -> list[Any]:
    """UC20+ lk: the recovery boot image into the partition the seed's env assigns it.

    snapd (bootloader/lk.go ``ExtractRecoveryKernelAssets``) unpacks the recovery
    kernel's boot image (``bootimg_file_name``, default ``boot.img``) into the seed's
    boot/lk/ and records the first free recovery boot image partition for the system
    label in the env's recovery matrix; lkenv_v2.go documents that partition as the
    one the kernel's boot image goes to, and the one the lk bootloader boots the
    system from.  Only a bare system-seed-image partition the gadget gives no content
    gets it; other unassigned ones (boot_rb) stay empty, as the gadget says.
    """
    from ucimage.image.adapter import describe
    from ucimage.image.spec import RawWrite
    from ucimage.seed.bootenv import LK_V2_RECOVERY, LkEnv

    lk_dir = _prepared_lk_dir(build)
    env_file = lk_dir / "snaprecoverysel.bin" if build.info.uc20 and lk_dir else None
    if env_file is None or not env_file.is_file():
        return []
    env = LkEnv.read(env_file, LK_V2_RECOVERY)
    system = env["snapd_recovery_system"]
    assigned = {label for label, value in env.boot_partitions() if label and value == system}
    boot_image = env_file.parent / env.boot_image_name()
    if not system or not boot_image.is_file():
        return []
    writes = []
    for s in layout.structures:
        bare = s.filesystem is None and not any(c.kind == "image" for c in s.content)
        if s.in_image and bare and s.role == "system-seed-image" and s.name in assigned:
            writes.append(
                RawWrite(
                    offset=s.start,
                    source=boot_image,
                    limit=s.size,
                    what=f'recovery boot image "{boot_image.name}"{describe(s)}',
                )
            )
    return writes


def disk_spec(build: ImageBuild, layout: VolumeLayout, path: Path, kernel_dir: Path | None) -> Any:
    from ucimage.image.adapter import spec_from_layout
    from ucimage.image.determinism import seed_and_timestamp

    seed, timestamp = seed_and_timestamp(layout.name, explicit=build.opts.image_seed)
    spec = spec_from_layout(
        layout,
        BuildContentResolver(build, kernel_dir),
        path=path,
        seed=seed,
        timestamp=timestamp,
    )
    extra = _lk_recovery_boot_images(build, layout)
    if extra:
        spec = dataclasses.replace(spec, raw_writes=(*spec.raw_writes, *extra))
    return spec


def populate(build: ImageBuild) -> dict[str, Any]:
    """Lay out every volume now that the seed is staged (sizes depend on it)."""
    plans = layouts(build)
    (build.workdir / "volumes.json").write_text(
        __import__("json").dumps([p.to_json() for p in plans], indent=1, default=str)
    )
    return {"volumes": [{"name": p.name, "size": p.size} for p in plans]}


def _nearly_full(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _check_space(directory: Path, need: int) -> None:
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise VolumeBuildError(
            f"not enough space in {directory}: the image needs up to {need} bytes, {free} are free",
            hint="free some space or choose another -O/--output-dir",
        )


def _payload_bytes(build: ImageBuild) -> int:
    return _du(build.root_dir()) + sum(
        -(-src.stat().st_size // 4096) * 4096 for src, _ in _deferred(build)
    )


def build(build: ImageBuild) -> list[str]:
    """Write every volume's image (and .bmap/.zst) under a temporary name, then give
    them their final names together: an interrupted or failed build leaves none."""
    from ucimage.image import write_disk

    outdir = build.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    kernel_dir = _kernel_dir(build, load_and_validate(build))
    #: (temporary, final) names of what was written so far, images first per volume
    written_files: list[tuple[Path, Path]] = []
    images: list[str] = []
    extras: list[str] = []
    try:
        for layout in layouts(build):
            final = outdir / f"{layout.name}.img"
            partial = outdir / f".{layout.name}.img.partial"
            bmap = outdir / f".{layout.name}.img.bmap.partial" if build.opts.bmap else None
            zstd = None
            if build.opts.compress == "zstd":
                zstd = outdir / f".{layout.name}.img.zst.partial"
            names = [(partial, final)]
            if bmap:
                names.append((bmap, _suffixed(final, ".bmap")))
            if zstd:
                names.append((zstd, _suffixed(final, ".zst")))
            for tmp, _ in names:
                tmp.unlink(missing_ok=True)
            written_files += names
            spec = disk_spec(build, layout, partial, kernel_dir)
            _check_space(outdir, _payload_bytes(build))
            written = _write_volume(build, write_disk, spec, final, bmap, zstd)
            build.progress.info(
                f"{final.name}: {written.size} bytes, {written.allocated} allocated"
            )
            images.insert(0, str(final))
            extras += [str(f) for _, f in names[1:]]
        # the images last: one under its final name has its .bmap/.zst beside it
        for tmp, final in sorted(written_files, key=lambda pair: pair[1].suffix == ".img"):
            # the build's umask is for the image's content: the files in -O are the
            # caller's, with the modes their umask gives (0600 under umask 077)
            _give_mode(tmp, 0o666 & ~build.user_umask)
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in written_files:
            tmp.unlink(missing_ok=True)
        raise
    return images + extras


def _give_mode(path: Path, mode: int) -> None:
    # a file system without Unix modes (vfat, some network ones) may refuse a chmod;
    # the file is written all the same
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except OSError:
        pass


def _suffixed(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _write_volume(
    build: ImageBuild, write_disk: Any, spec: Any, final: Path, bmap: Path | None,
    zstd: Path | None,
) -> Any:  # fmt: skip
    """One volume's image and extras, written to their temporary names; a full disk
    (as the tools report it, or as the disk shows) is one clear error."""
    outdir = build.outdir
    try:
        return write_disk(spec, workdir=build.workdir, bmap=bmap, zstd=zstd)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise VolumeBuildError(
                f"no space left on the device while writing {final}",
                hint="free some space or choose another -O/--output-dir",
            ) from exc
        raise
    except UcimageError as exc:
        full = _nearly_full(outdir) or _nearly_full(build.workdir)
        if full or "No space left" in exc.message:
            raise VolumeBuildError(
                f"no space left on the device while writing {final}",
                hint="free some space or choose another -O/--output-dir",
            ) from exc
        raise
