"""Reading OpenPGP secret keys as ``gpg --export-secret-keys`` writes them (RFC 4880 §5.5.3).

So that keys made by ``snap create-key`` (which lives in a GnuPG keyring) can be
imported.  Supports ASCII armor or binary, unprotected keys (S2K usage 0) and
keys protected with an AES passphrase (S2K usage 254/255, iterated+salted S2K).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ucimage.assertions.crypto import (
    TAG_SECRET_KEY,
    TAG_USER_ID,
    PrivateKey,
    PublicKey,
    read_mpi,
    read_packet,
)
from ucimage.assertions.errors import KeyringError
from ucimage.errors import CommandFailedError
from ucimage.run import run

_CIPHERS = {7: 16, 8: 24, 9: 32}  # AES-128/192/256: key size in bytes
_HASHES = {
    1: "md5",
    2: "sha1",
    3: "ripemd160",
    8: "sha256",
    9: "sha384",
    10: "sha512",
    11: "sha224",
}


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text: bytes) -> bytes:
    """Binary packets from ASCII armor (checks the CRC-24 when present)."""
    lines = text.decode("ascii", "replace").replace("\r", "").split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("-----BEGIN PGP"))
    except StopIteration:
        raise KeyringError("no OpenPGP armor found") from None
    body: list[str] = []
    checksum = None
    i = start + 1
    while i < len(lines) and lines[i].strip() and ":" in lines[i]:
        i += 1  # armor headers such as "Comment: ..."
    for line in lines[i:]:
        line = line.strip()
        if line.startswith("-----END PGP"):
            break
        if line.startswith("=") and len(line) == 5:
            checksum = line[1:]
        elif line:
            body.append(line)
    try:
        data = base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyringError(f"bad OpenPGP armor: {exc}") from None
    if checksum is not None:
        try:
            expected = int.from_bytes(base64.b64decode(checksum), "big")
        except (binascii.Error, ValueError):
            raise KeyringError("bad OpenPGP armor checksum") from None
        if _crc24(data) != expected:
            raise KeyringError("OpenPGP armor checksum mismatch: the file is corrupted")
    return data


@dataclass(frozen=True)
class SecretKeyPacket:
    public: PublicKey
    creation_time: int
    user_id: str | None
    s2k_usage: int
    secret: bytes  # what follows the s2k usage byte


def read_secret_key(data: bytes) -> SecretKeyPacket:
    """The primary secret key (and first user id) of an exported secret key."""
    if data.lstrip().startswith(b"-----BEGIN"):
        data = dearmor(data)
    pos = 0
    found: SecretKeyPacket | None = None
    user_id = None
    try:
        while pos < len(data):
            tag, body, pos = read_packet(data, pos)
            if tag == TAG_SECRET_KEY and found is None:
                found = _parse_secret_packet(body)
            elif tag == TAG_USER_ID and found is not None and user_id is None:
                user_id = body.decode("utf-8", "replace")
    except ValueError as exc:
        raise KeyringError(f"cannot read OpenPGP secret key: {exc}") from None
    if found is None:
        raise KeyringError(
            "no OpenPGP secret key found",
            hint="export it with: gpg --homedir ~/.snap/gnupg --export-secret-keys NAME",
        )
    return SecretKeyPacket(
        found.public, found.creation_time, user_id, found.s2k_usage, found.secret
    )


def _parse_secret_packet(body: bytes) -> SecretKeyPacket:
    if len(body) < 6 or body[0] != 4:
        raise KeyringError("only OpenPGP v4 secret keys are supported")
    if body[5] not in (1, 2, 3):
        raise KeyringError(f"only RSA keys can sign assertions (OpenPGP algorithm {body[5]})")
    created = struct.unpack_from(">I", body, 1)[0]
    n, pos = read_mpi(body, 6)
    e, pos = read_mpi(body, pos)
    if pos >= len(body):
        raise KeyringError("truncated OpenPGP secret key")
    return SecretKeyPacket(PublicKey(n, e), created, None, body[pos], body[pos + 1 :])


def _s2k_key(spec: bytes, passphrase: bytes, size: int) -> tuple[bytes, int]:
    """Derive a *size*-byte key; returns (key, bytes of spec consumed)."""
    kind = spec[0]
    if kind == 101:
        raise KeyringError(
            "the secret key is a stub (on a smartcard or not exported); it cannot be imported"
        )
    if kind not in (0, 1, 3) or len(spec) < 2:
        raise KeyringError(f"unsupported S2K specifier {kind}")
    hash_name = _HASHES.get(spec[1])
    if hash_name is None:
        raise KeyringError(f"unsupported S2K hash algorithm {spec[1]}")
    salt = b""
    used = 2
    count = 0
    if kind in (1, 3):
        salt = spec[2:10]
        used = 10
    if kind == 3:
        c = spec[10]
        count = (16 + (c & 15)) << ((c >> 4) + 6)
        used = 11
    material = salt + passphrase
    out = b""
    preload = 0
    while len(out) < size:
        h = hashlib.new(hash_name)
        h.update(b"\x00" * preload)
        if kind == 3:
            total = max(count, len(material))
            full, rest = divmod(total, len(material))
            h.update(material * full + material[:rest])
        else:
            h.update(material)
        out += h.digest()
        preload += 1
    return out[:size], used


def _cfb_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Plain CFB-128 (RFC 4880 §13.9 without resync), built on the AES block function."""
    if len(iv) != 16:
        raise KeyringError("truncated OpenPGP secret key")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = bytearray()
    previous = iv
    for i in range(0, len(data), 16):
        block = data[i : i + 16]
        stream = encryptor.update(previous)
        out += bytes(a ^ b for a, b in zip(block, stream, strict=False))
        previous = block
    return bytes(out)


def unlock(packet: SecretKeyPacket, passphrase: str | bytes | None) -> PrivateKey:
    """The private key, decrypting it with *passphrase* when it is protected."""
    usage = packet.s2k_usage
    data = packet.secret
    if usage == 0:
        plain = data
        check = "sum"
    elif usage in (254, 255):
        if not passphrase:
            raise KeyringError(
                "the OpenPGP secret key is protected by a passphrase",
                hint="give it with --passphrase-file FILE",
            )
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        if not data or data[0] not in _CIPHERS:
            algo = data[0] if data else -1
            raise KeyringError(f"unsupported OpenPGP cipher algorithm {algo} (only AES)")
        key, used = _s2k_key(data[1:], pw, _CIPHERS[data[0]])
        start = 1 + used
        iv = data[start : start + 16]
        encrypted = data[start + 16 :]
        plain = _cfb_decrypt(key, iv, encrypted)
        check = "sha1" if usage == 254 else "sum"
    else:
        raise KeyringError(f"unsupported OpenPGP secret key protection {usage}")
    try:
        d, pos = read_mpi(plain, 0)
        p, pos = read_mpi(plain, pos)
        q, pos = read_mpi(plain, pos)
        _u, pos = read_mpi(plain, pos)
    except ValueError:
        if usage:
            raise KeyringError("wrong passphrase for the OpenPGP secret key") from None
        raise KeyringError("corrupted OpenPGP secret key") from None
    if check == "sha1":
        ok = hashlib.sha1(plain[:pos]).digest() == plain[pos : pos + 20]
    else:
        ok = sum(plain[:pos]) & 0xFFFF == int.from_bytes(plain[pos : pos + 2], "big")
    if not ok:
        if usage:
            raise KeyringError("wrong passphrase for the OpenPGP secret key")
        raise KeyringError("corrupted OpenPGP secret key (checksum mismatch)")
    pub = packet.public
    if p * q != pub.n:
        raise KeyringError("corrupted OpenPGP secret key (p*q != n)")
    try:
        return PrivateKey.from_numbers(pub.n, pub.e, d, p, q)
    except ValueError as exc:
        raise KeyringError(f"invalid RSA secret key: {exc}") from None


def load_foreign_key(data: bytes, passphrase: str | bytes | None = None) -> tuple[PrivateKey, str]:
    """A private key from a gpg export (armored or binary) or a PEM file: (key, suggested name).

    The suggested name is the OpenPGP user id (``snap create-key`` makes it the key
    name) or empty when there is none.
    """
    stripped = data.lstrip()
    if stripped.startswith(b"-----BEGIN") and b"PGP" not in stripped[:40]:
        return PrivateKey.from_pem(data, passphrase), ""
    packet = read_secret_key(data)
    key = unlock(packet, passphrase)
    return key, (packet.user_id or "").strip()


def snap_gnupg_home() -> Path:
    """Where ``snap create-key`` keeps keys: ``$SNAP_GNUPG_HOME`` or ``~/.snap/gnupg``."""
    override = os.environ.get("SNAP_GNUPG_HOME")
    return Path(override) if override else Path.home() / ".snap" / "gnupg"


def export_from_gnupg(
    name: str, home: Path | None = None, passphrase: str | bytes | None = None
) -> bytes:
    """``gpg --export-secret-keys`` of the key whose user id is exactly *name*.

    The passphrase (if any) is handed to gpg on stdin (loopback pinentry), never
    on the command line.
    """
    home = home or snap_gnupg_home()
    if not home.is_dir():
        raise KeyringError(
            f"no GnuPG home at {home}",
            hint="pass --gnupg-home DIR (snap uses $SNAP_GNUPG_HOME or ~/.snap/gnupg)",
        )
    pw = passphrase.encode() if isinstance(passphrase, str) else (passphrase or b"")
    argv = [
        "gpg", "--homedir", str(home), "--batch", "-q", "--no-auto-check-trustdb",
        "--pinentry-mode", "loopback", "--passphrase-fd", "0",
        "--export-secret-keys", f"={name}",
    ]  # fmt: skip
    try:
        proc = run(argv, input=pw + b"\n", timeout=120)
    except CommandFailedError as exc:
        reason = exc.stderr.splitlines()[-1] if exc.stderr else "gpg failed"
        raise KeyringError(f"cannot export key {name!r} from {home}: {reason}") from None
    if not proc.stdout:
        raise KeyringError(
            f"no secret key with user id {name!r} in {home}",
            hint=f"list them with: gpg --homedir {home} --list-secret-keys",
        )
    return proc.stdout
