"""The keyring: named RSA keys in a private directory.

Layout: ``DIR/NAME.key`` (PKCS#8 PEM, encrypted when it has a passphrase) and
``DIR/NAME.pub`` (the v1 public key, as ``snap export-key`` prints it).  ``DIR``
is ``--keyring``, else ``$UCIMAGE_KEYRING``, else ``$XDG_DATA_HOME/ucimage/keys``.
The directory is mode 0700 and every file 0600; a key file others can read is
refused, as ssh does.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ucimage.assertions.crypto import PrivateKey, PublicKey
from ucimage.assertions.errors import AssertionFormatError, KeyringError
from ucimage.assertions.rules import KEY_NAME_RE
from ucimage.run import data_home

DEFAULT_KEY_NAME = "default"


def keyring_dir(override: str | os.PathLike[str] | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get("UCIMAGE_KEYRING")
    if env:
        return Path(env)
    return data_home() / "keys"


def check_key_name(name: str) -> None:
    if not KEY_NAME_RE.match(name):
        raise KeyringError(
            f"invalid key name {name!r}",
            hint="use lowercase letters, digits and single hyphens, with at least one letter",
        )


@dataclass(frozen=True)
class KeyInfo:
    name: str
    id: str
    protected: bool


class Keyring:
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = keyring_dir(directory)

    def _private_path(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def _public_path(self, name: str) -> Path:
        return self.directory / f"{name}.pub"

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o077:
            os.chmod(self.directory, 0o700)

    def exists(self, name: str) -> bool:
        return self._private_path(name).exists()

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.key"))

    def list(self) -> list[KeyInfo]:
        return [
            KeyInfo(name, self.public_key(name).id, self._is_protected(name))
            for name in self.names()
        ]

    def _is_protected(self, name: str) -> bool:
        return b"ENCRYPTED" in self._private_path(name).read_bytes()[:200]

    def is_protected(self, name: str) -> bool:
        self._require(name)
        return self._is_protected(name)

    def _require(self, name: str) -> None:
        check_key_name(name)
        if not self._private_path(name).exists():
            known = ", ".join(self.names()) or "none"
            raise KeyringError(
                f"no key named {name!r} in {self.directory} (keys: {known})",
                hint="create one with: ucimage create-key NAME, or pass --keyring DIR",
            )

    def add(self, name: str, key: PrivateKey, passphrase: str | bytes | None = None) -> None:
        """Store *key* under *name* (never overwrites)."""
        check_key_name(name)
        if self.exists(name):
            raise KeyringError(
                f"a key named {name!r} already exists in {self.directory}",
                hint="pick another name",
            )
        for other in self.names():
            if self.public_key(other).id == key.id:
                raise KeyringError(f"this key is already in the keyring as {other!r}")
        self._ensure_dir()
        _write_private(self._private_path(name), key.to_pem(passphrase))
        _write_private(self._public_path(name), (key.public_key().encode() + "\n").encode())

    def create(
        self, name: str, *, bits: int = 4096, passphrase: str | bytes | None = None
    ) -> PrivateKey:
        check_key_name(name)
        if self.exists(name):
            raise KeyringError(f"a key named {name!r} already exists in {self.directory}")
        key = PrivateKey.generate(bits)
        self.add(name, key, passphrase)
        return key

    def load(self, name: str, passphrase: str | bytes | None = None) -> PrivateKey:
        """The private key *name*; raises :class:`KeyringError` (wrong passphrase, …)."""
        self._require(name)
        path = self._private_path(name)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyringError(
                f"key file {path} is accessible by others (mode {mode:04o})",
                hint=f"chmod 600 {path}",
            )
        try:
            return PrivateKey.from_pem(path.read_bytes(), passphrase, validate=False)
        except KeyringError as exc:
            message = exc.message
            if message == "wrong passphrase for key":
                message = f"wrong passphrase for key {name!r}"
            elif message == "key is protected by a passphrase":
                message = f"key {name!r} is protected by a passphrase"
            raise KeyringError(message, hint=exc.hint) from None

    def public_key(self, name: str) -> PublicKey:
        self._require(name)
        path = self._public_path(name)
        if not path.exists() and not self._is_protected(name):
            # only the private file was copied in: derive the public part
            key = self.load(name)
            _write_private(path, (key.public_key().encode() + "\n").encode())
            return key.public_key()
        try:
            return PublicKey.decode(path.read_bytes())
        except (OSError, AssertionFormatError) as exc:
            raise KeyringError(f"cannot read public key {path}: {exc}") from None

    def delete(self, name: str) -> None:
        self._require(name)
        self._private_path(name).unlink()
        with contextlib.suppress(FileNotFoundError):
            self._public_path(name).unlink()


def _write_private(path: Path, data: bytes) -> None:
    """Write *data* to a new file created 0600 (never briefly world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
