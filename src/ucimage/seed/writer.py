"""Write a snapd seed the way ``snap prepare-image`` lays it out.

Two layouts:

* UC16/18 (:func:`write_seed16`): into the future writable root,
  ``var/lib/snapd/seed/{seed.yaml,snaps/,assertions/}``, relative symlinks for
  the boot snaps in ``var/lib/snapd/snaps/``, cloud-init and console-conf
  customisations; bootloader files go into a separate *boot* directory
  (``grub/`` or ``uboot/`` …), which the build puts on the system-boot partition.
* UC20+ (:func:`write_seed20`): the ubuntu-seed tree, ``snaps/`` for asserted
  snaps and ``systems/<label>/{model,assertions/,options.yaml,snaps/}``.

Snap files are placed with :func:`place_file` (a hard link when source and
destination share a filesystem, else one streamed copy), so a snap's bytes are
never unpacked and written at most once before they reach the image.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ucimage.errors import UcimageError
from ucimage.seed.bootloader import (
    BootAssets,
    write_boot16,
    write_recovery20,
)
from ucimage.seed.model import ModelInfo


class SeedError(UcimageError):
    """The seed cannot be written."""

    code = "seed"


@dataclass(frozen=True)
class SeedAssertion:
    """An assertion to store in the seed, with what names its file."""

    type: str
    primary_key: tuple[str, ...]
    text: bytes

    @property
    def file_name(self) -> str:
        """``<primary key joined by ,>.<type>``, as snapd names seed assertion files."""
        return ",".join(self.primary_key) + "." + self.type


@dataclass(frozen=True)
class SeedSnap:
    """One snap as it goes into the seed."""

    name: str
    type: str
    path: Path
    version: str
    revision: int | None = None  # None: a local, unasserted snap
    snap_id: str | None = None
    channel: str | None = None
    assertions: tuple[SeedAssertion, ...] = ()
    classic: bool = False
    devmode: bool = False

    @property
    def asserted(self) -> bool:
        return self.revision is not None


@dataclass(frozen=True)
class Customizations:
    """Image customisations (``--cloud-init``, ``--disable-console-conf`` …)."""

    cloud_init_user_data: Path | None = None
    disable_console_conf: bool = False
    boot_flags: tuple[str, ...] = ()
    #: the gadget's ``defaults: system:`` tree (UC16/18: filesystem-only ones apply)
    system_defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class SeedResult:
    """What the writer placed: file name of each snap in the seed."""

    files: dict[str, str] = field(default_factory=dict)  # snap name -> file name
    revisions: dict[str, str] = field(default_factory=dict)  # snap name -> "123" or "x1"
    label: str | None = None
    boot_snaps: dict[str, str] = field(default_factory=dict)  # name -> rev, UC16/18 only


#: puts a snap file at a path of the seed tree (the default hard-links or streams)
Placer = Callable[[Path, Path], None]


def system_label(epoch: int | None = None) -> str:
    """The UC20 recovery system label: the build's UTC date ``YYYYMMDD``."""
    when = dt.datetime.now(dt.UTC) if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)
    return when.strftime("%Y%m%d")


def place_file(src: Path, dst: Path) -> None:
    """Put *src* at *dst*: a hard link if possible, else one streamed copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise
    # the source's mode, as a hard link has it (and snapd's seedwriter copies it)
    shutil.copyfile(src, dst)
    shutil.copymode(src, dst)


def _write_text(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)


def _yaml_scalar(value: str) -> str:
    """Quote a YAML scalar only when a plain one would not read back as the same string."""
    import yaml

    plain = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    if plain.endswith("\n...") or plain.endswith("..."):
        plain = plain.rsplit("\n", 1)[0]
    return plain


def _unique_assertions(snaps: Iterable[SeedSnap]) -> list[SeedAssertion]:
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out: list[SeedAssertion] = []
    for snap in snaps:
        for assertion in snap.assertions:
            key = (assertion.type, assertion.primary_key)
            if key not in seen:
                seen.add(key)
                out.append(assertion)
    return out


def write_seed16(
    root: Path,
    boot_dir: Path,
    model: ModelInfo,
    model_text: bytes,
    model_assertions: Sequence[SeedAssertion],
    snaps: Sequence[SeedSnap],
    assets: BootAssets,
    custom: Customizations = Customizations(),
    place: Placer | None = None,
) -> SeedResult:
    """Write a UC16/18 seed under *root* (the future ``system-data``), boot files in *boot_dir*."""
    if custom.boot_flags:
        raise SeedError(
            "cannot support with UC16/18 model requested customizations: boot flags "
            f"({', '.join(custom.boot_flags)})",
            hint="--factory-image is for UC20+ models",
        )
    seed = root / "var/lib/snapd/seed"
    result = SeedResult()
    local_count: dict[str, int] = {}
    lines = ["snaps:"]
    for snap in snaps:
        if snap.asserted:
            rev = str(snap.revision)
        else:
            local_count[snap.name] = local_count.get(snap.name, 0) + 1
            rev = f"x{local_count[snap.name]}"
        file_name = f"{snap.name}_{rev}.snap"
        (place or place_file)(snap.path, seed / "snaps" / file_name)
        result.files[snap.name] = file_name
        result.revisions[snap.name] = rev
        lines.append(f"- name: {_yaml_scalar(snap.name)}")
        if snap.asserted:
            if snap.snap_id:
                lines.append(f"  snap-id: {_yaml_scalar(snap.snap_id)}")
            if snap.channel:
                lines.append(f"  channel: {_yaml_scalar(snap.channel)}")
        if snap.devmode:
            lines.append("  devmode: true")
        if snap.classic:
            lines.append("  classic: true")
        if not snap.asserted:
            lines.append("  unasserted: true")
        lines.append(f"  file: {_yaml_scalar(file_name)}")
    _write_text(seed / "seed.yaml", "\n".join(lines) + "\n")

    assertions_dir = seed / "assertions"
    assertions_dir.mkdir(parents=True, exist_ok=True)
    if model_text:
        _write_text(assertions_dir / "model", model_text)
    for assertion in [*model_assertions, *_unique_assertions(snaps)]:
        _write_text(assertions_dir / assertion.file_name, assertion.text)

    # boot snaps are "installed": relative links from var/lib/snapd/snaps
    kernel = model.kernel.name
    base = model.boot_base.name
    installed = root / "var/lib/snapd/snaps"
    installed.mkdir(parents=True, exist_ok=True)
    for name in (base, kernel):
        if name not in result.files:
            raise SeedError(f"boot snap {name!r} is missing from the seed")
        link = installed / result.files[name]
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(Path("../seed/snaps") / result.files[name])
        result.boot_snaps[name] = result.revisions[name]

    if custom.cloud_init_user_data is not None:
        nocloud = root / "var/lib/cloud/seed/nocloud-net"
        _write_text(nocloud / "meta-data", "instance-id: nocloud-static\n")
        _write_text(nocloud / "user-data", custom.cloud_init_user_data.read_bytes())
    if custom.disable_console_conf:
        _write_text(
            root / "_writable_defaults/var/lib/console-conf/complete",
            "console-conf has been disabled by image customization\n",
        )
    if custom.system_defaults:
        apply_filesystem_defaults(root / "_writable_defaults", custom.system_defaults)
    gadget_cloud = assets.gadget_dir / "cloud.conf"
    if gadget_cloud.is_file():
        _write_text(root / "etc/cloud/cloud.cfg", gadget_cloud.read_bytes())

    write_boot16(
        boot_dir,
        model,
        assets,
        core_file=result.files[base],
        kernel_file=result.files[kernel],
    )
    return result


#: snapd features on by default (2.57), recorded when system defaults are applied
DEFAULT_FEATURES = (
    "classic-preserves-xdg-runtime-dir",
    "refresh-app-awareness",
    "robust-mount-namespace-updates",
)


def apply_filesystem_defaults(dest: Path, system: Mapping[str, Any]) -> None:
    """Write the gadget's filesystem-only ``system`` defaults, as snapd does at seeding.

    ``service.<name>.disable: true`` masks the unit (ssh: a marker file),
    ``journal.persistent: true`` creates ``/var/log/journal``,
    ``system.power-key-action`` goes to a logind drop-in.
    """
    (dest / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    services = system.get("service") or {}
    if isinstance(services, Mapping):
        for name, conf in sorted(services.items()):
            if not (isinstance(conf, Mapping) and str(conf.get("disable")).lower() == "true"):
                continue
            if name == "ssh":
                _write_text(
                    dest / "etc/ssh/sshd_not_to_be_run",
                    "SSH has been disabled by snapd system configuration\n",
                )
            else:
                unit = dest / f"etc/systemd/system/{name}.service"
                unit.parent.mkdir(parents=True, exist_ok=True)
                if unit.is_symlink() or unit.exists():
                    unit.unlink()
                unit.symlink_to("/dev/null")
    journal = system.get("journal") or {}
    if isinstance(journal, Mapping) and str(journal.get("persistent")).lower() == "true":
        marker = dest / "var/log/journal/.snapd-created"
        _write_text(marker, "", mode=0o700)
    sysconf = system.get("system") or {}
    if isinstance(sysconf, Mapping) and sysconf.get("power-key-action"):
        _write_text(
            dest / "etc/systemd/logind.conf.d/00-snap-core.conf",
            f"[Login]\nHandlePowerKey={sysconf['power-key-action']}\n",
        )
    for feature in DEFAULT_FEATURES:
        _write_text(dest / "var/lib/snapd/features" / feature, "")


def _stream(assertions: Iterable[SeedAssertion]) -> bytes:
    parts = []
    for assertion in assertions:
        text = assertion.text
        parts.append(text if text.endswith(b"\n") else text + b"\n")
    return b"\n".join(parts)


def write_seed20(
    seed_root: Path,
    model: ModelInfo,
    model_text: bytes,
    model_assertions: Sequence[SeedAssertion],
    snaps: Sequence[SeedSnap],
    assets: BootAssets,
    label: str,
    custom: Customizations = Customizations(),
    place: Placer | None = None,
) -> SeedResult:
    """Write a UC20+ seed (the ubuntu-seed tree) under *seed_root*.

    *place* puts a snap file into the tree (default :func:`place_file`).
    """
    if custom.cloud_init_user_data is not None or custom.disable_console_conf:
        wanted = []
        if custom.cloud_init_user_data is not None:
            wanted.append("cloud-init user-data")
        if custom.disable_console_conf:
            wanted.append("console-conf disable")
        raise SeedError(
            f"cannot support with UC20+ model requested customizations: {', '.join(wanted)}",
            hint="put cloud-init config in the gadget for UC20+ models",
        )
    system = seed_root / "systems" / label
    if system.exists():
        raise SeedError(f"recovery system {label!r} already exists in {seed_root}")
    result = SeedResult(label=label)
    options: list[str] = []
    for snap in snaps:
        in_model = model.find(snap.name)
        if snap.asserted:
            file_name = f"{snap.name}_{snap.revision}.snap"
            (place or place_file)(snap.path, seed_root / "snaps" / file_name)
            result.files[snap.name] = f"/snaps/{file_name}"
            result.revisions[snap.name] = str(snap.revision)
            default = in_model.default_channel if in_model else None
            if in_model is None or (snap.channel and snap.channel != default):
                options.append(f"- name: {_yaml_scalar(snap.name)}")
                if snap.snap_id:
                    options.append(f"  id: {_yaml_scalar(snap.snap_id)}")
                if snap.channel:
                    options.append(f"  channel: {_yaml_scalar(snap.channel)}")
        else:
            file_name = f"{snap.name}_{snap.version}.snap"
            (place or place_file)(snap.path, system / "snaps" / file_name)
            result.files[snap.name] = f"/systems/{label}/snaps/{file_name}"
            options.append(f"- name: {_yaml_scalar(snap.name)}")
            snap_id = snap.snap_id or (in_model.snap_id if in_model else None)
            if snap_id:
                options.append(f"  id: {_yaml_scalar(snap_id)}")
            options.append(f"  unasserted: {_yaml_scalar(file_name)}")
    _write_text(system / "model", model_text)
    _write_text(system / "assertions/model-etc", _stream(model_assertions))
    _write_text(system / "assertions/snaps", _stream(_unique_assertions(snaps)))
    if options:
        _write_text(system / "options.yaml", "snaps:\n" + "\n".join(options) + "\n")
    (seed_root / "snaps").mkdir(parents=True, exist_ok=True)
    kernel = model.kernel.name
    if kernel not in result.files:
        raise SeedError(f"kernel snap {kernel!r} is missing from the seed")
    write_recovery20(
        seed_root,
        model,
        assets,
        label=label,
        kernel_path=result.files[kernel],
        boot_flags=custom.boot_flags,
    )
    return result
