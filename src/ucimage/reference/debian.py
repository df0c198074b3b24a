"""Debian packages the reference platform is made of: resolve, download, unpack.

Packages are fetched with ``apt-get download`` (no root needed, no install)
into a cache directory and unpacked with ``dpkg-deb -x``. Both the ``.deb`` and
the unpacked tree are cached under ``$XDG_CACHE_HOME/ucimage/reference`` keyed
by the exact package version, so a second build needs no network.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ucimage.errors import UcimageError
from ucimage.run import run

log = logging.getLogger(__name__)


class DebianPackageError(UcimageError):
    """A Debian package could not be resolved, downloaded or unpacked."""

    code = "debian-package"


@dataclass(frozen=True)
class DebianPackage:
    """One exact binary package version."""

    name: str
    version: str
    architecture: str

    @property
    def deb_name(self) -> str:
        """The file name ``apt-get download`` gives it (epoch colon quoted as %3a)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"

    @property
    def upstream_version(self) -> str:
        """The version without epoch, e.g. ``1.35.0-4+deb12u1+b1``."""
        return self.version.split(":", 1)[-1]


_FIELD = re.compile(r"^([A-Za-z-]+):\s*(.*)$")


def _stanzas(text: str) -> list[dict[str, str]]:
    """Paragraphs of ``apt-cache show`` output as dicts (continuation lines dropped)."""
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                stanzas.append(fields)
                fields = {}
            continue
        m = _FIELD.match(line)
        if m:
            fields[m.group(1)] = m.group(2)
    return stanzas


def _first_stanza(text: str) -> dict[str, str]:
    stanzas = _stanzas(text)
    return stanzas[0] if stanzas else {}


def resolve_available(names: Sequence[str]) -> dict[str, tuple[DebianPackage, str]]:
    """Candidate versions of those of *names* apt knows, in one apt-cache call.

    Returns name -> (package, its Depends field); unknown names are left out.
    """
    proc = run(["apt-cache", "show", "--no-all-versions", *names], check=False)
    found: dict[str, tuple[DebianPackage, str]] = {}
    for fields in _stanzas(proc.stdout.decode("utf-8", "replace")):
        name = fields.get("Package", "")
        if name in names and name not in found and "Version" in fields:
            pkg = DebianPackage(name, fields["Version"], fields.get("Architecture", "amd64"))
            found[name] = (pkg, fields.get("Depends", ""))
    return found


def resolve_many(names: Sequence[str]) -> dict[str, tuple[DebianPackage, str]]:
    """Like :func:`resolve_available`, but every name must be known."""
    found = resolve_available(names)
    missing = [n for n in names if n not in found]
    if missing:
        raise DebianPackageError(
            f"apt knows no installable version of {', '.join(map(repr, missing))}",
            hint="run 'apt-get update' (as root) so apt's package lists are current",
        )
    return found


def resolve(name: str) -> DebianPackage:
    """The candidate version of *name* from the local apt metadata."""
    return resolve_many([name])[name][0]


def metapackage_target(depends: str, prefix: str, meta: str) -> str:
    """The first package in a Depends field whose name starts with *prefix*."""
    for dep in re.split(r"[,|]", depends):
        dep_name = dep.strip().split(" ", 1)[0]
        if dep_name.startswith(prefix):
            return dep_name
    raise DebianPackageError(
        f"{meta} depends on no package named {prefix}*",
        hint="the reference platform expects Debian's linux-image-amd64 meta-package",
    )


def download(package: DebianPackage, cache_dir: Path) -> Path:
    """The ``.deb`` of *package* in *cache_dir*, downloaded with apt-get if missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    deb = cache_dir / package.deb_name
    if deb.is_file() and deb.stat().st_size > 0:
        log.info("cached: %s", deb)
        return deb
    log.info("downloading %s %s", package.name, package.version)
    try:
        run(["apt-get", "download", f"{package.name}={package.version}"], cwd=cache_dir)
    except UcimageError as exc:
        raise DebianPackageError(
            f"cannot download {package.name} {package.version}: {exc.message}",
            hint="check access to the Debian mirrors in /etc/apt/sources.list*",
        ) from exc
    if not deb.is_file():
        raise DebianPackageError(
            f"apt-get download of {package.name} wrote no {deb.name} in {cache_dir}"
        )
    return deb


def unpack(deb: Path, dest: Path, keep: Sequence[str] | None = None) -> Path:
    """``dpkg-deb -x`` *deb* into *dest* once; an existing complete tree is reused.

    With *keep* (``fnmatch`` patterns of package-relative paths) only matching
    files stay, e.g. the kernel and the few modules the initramfs needs out of a
    400 MB kernel package.
    """
    done = dest / ".ucimage-unpacked"
    if done.is_file():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    partial = dest.with_name(dest.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        run(["dpkg-deb", "-x", deb, partial])
    except UcimageError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise DebianPackageError(
            f"cannot unpack {deb.name}: {exc.message}",
            hint=f"the download may be damaged: delete {deb} and build again",
        ) from exc
    if keep is not None:
        _prune(partial, keep)
    (partial / ".ucimage-unpacked").write_text(deb.name + "\n")
    partial.rename(dest)
    return dest


def _prune(root: Path, keep: Sequence[str]) -> None:
    """Delete every file under *root* that matches none of *keep*, then empty dirs."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if not any(fnmatch.fnmatchcase(rel, pattern) for pattern in keep):
                path.unlink()
        for name in dirnames:
            sub = Path(dirpath) / name
            if sub.is_symlink():
                rel = sub.relative_to(root).as_posix()
                if not any(fnmatch.fnmatchcase(rel, pattern) for pattern in keep):
                    sub.unlink()
            elif not any(sub.iterdir()):
                sub.rmdir()
