"""RSA keys and signatures in snapd's "v1" container (``docs/assertions.md`` §2).

A v1 blob is the byte ``0x01`` followed by exactly one OpenPGP (RFC 4880) v4
packet: a Public-Key packet for keys, a Signature packet for signatures; base64
in 76-column lines.  The packet framing is written here.  Verifying is one
modular exponentiation and a compare, done here too, so the many commands that
only check signatures (``ucimage snap`` among them) never load ``cryptography``
(~25 ms); it does the private-key work: generating, loading and signing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ucimage.assertions.errors import AssertionFormatError, AssertionVerifyError, KeyringError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

#: creation time snapd puts in every public-key packet (2016-01-01T00:00:00Z)
V1_FIXED_TIMESTAMP = 0x5685C180

TAG_SIGNATURE = 2
TAG_SECRET_KEY = 5
TAG_PUBLIC_KEY = 6
TAG_SECRET_SUBKEY = 7
TAG_USER_ID = 13

PK_RSA = 1
HASH_SHA512 = 10
SUB_CREATION_TIME = 2
SUB_ISSUER = 16
SUB_ISSUER_FINGERPRINT = 33

#: the largest RSA public exponent and modulus a signature is checked with
MAX_RSA_EXPONENT = (1 << 31) - 1
MAX_RSA_BITS = 16384

#: DER DigestInfo prefix of a SHA-512 digest (RFC 8017 §9.2, note 1)
SHA512_DIGEST_INFO = bytes.fromhex("3051300d060960864801650304020305000440")

#: signature packet layouts we can produce: snapd's own signer, or GnuPG as ``snap sign`` uses
SIGNATURE_STYLES = ("snapd", "gnupg")


# --------------------------------------------------------------------------- packet framing


def mpi(value: int) -> bytes:
    """RFC 4880 multiprecision integer: 2-byte bit count, then minimal big-endian bytes."""
    bits = value.bit_length()
    return struct.pack(">H", bits) + value.to_bytes((bits + 7) // 8, "big")


def read_mpi(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(data):
        raise ValueError("truncated MPI")
    bits = struct.unpack_from(">H", data, pos)[0]
    n = (bits + 7) // 8
    end = pos + 2 + n
    if end > len(data):
        raise ValueError("truncated MPI")
    return int.from_bytes(data[pos + 2 : end], "big"), end


def packet(tag: int, body: bytes) -> bytes:
    """A new-format packet header plus *body*."""
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        length = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    else:
        length = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + length + body


def read_packet(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """Parse one packet at *pos*: (tag, body, position after it). Old and new formats."""
    if pos >= len(data):
        raise ValueError("no packet")
    first = data[pos]
    if not first & 0x80:
        raise ValueError("not an OpenPGP packet")
    pos += 1
    if first & 0x40:  # new format
        tag = first & 0x3F
        if pos >= len(data):
            raise ValueError("truncated packet header")
        o1 = data[pos]
        if o1 < 192:
            length, pos = o1, pos + 1
        elif o1 < 224:
            if pos + 2 > len(data):
                raise ValueError("truncated packet header")
            length, pos = ((o1 - 192) << 8) + data[pos + 1] + 192, pos + 2
        elif o1 == 255:
            if pos + 5 > len(data):
                raise ValueError("truncated packet header")
            length, pos = struct.unpack_from(">I", data, pos + 1)[0], pos + 5
        else:
            raise ValueError("partial body lengths are not supported")
    else:  # old format
        tag = (first >> 2) & 0x0F
        ltype = first & 3
        if ltype == 3:
            raise ValueError("indeterminate packet lengths are not supported")
        size = (1, 2, 4)[ltype]
        if pos + size > len(data):
            raise ValueError("truncated packet header")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    end = pos + length
    if end > len(data):
        raise ValueError("truncated packet")
    return tag, data[pos:end], end


def encode_v1(packet_bytes: bytes) -> str:
    """``0x01`` + packet, base64 (standard alphabet, padded), 76-column lines."""
    text = base64.b64encode(b"\x01" + packet_bytes).decode("ascii")
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def decode_v1(text: str | bytes, what: str) -> bytes:
    """The packet inside a v1 blob (raises ValueError with a snapd-like reason)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    cleaned = text.replace("\n", "").replace("\r", "")
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"cannot decode {what}: {exc}") from None
    if not raw:
        raise ValueError(f"empty {what}")
    if raw[0] != 1:
        raise ValueError(f"unsupported {what} format version: {raw[0]}")
    return raw[1:]


def _b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sha3_384_digest(data: bytes) -> str:
    """base64url-without-padding SHA3-384, the ``*-sha3-384`` header form."""
    return _b64url_nopad(hashlib.sha3_384(data).digest())


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class PublicKey:
    """An RSA public key as snapd sees it: (n, e) in a canonical v4 packet."""

    n: int
    e: int

    @classmethod
    def from_crypto(cls, key: rsa.RSAPublicKey) -> PublicKey:
        numbers = key.public_numbers()
        return cls(numbers.n, numbers.e)

    def packet_body(self) -> bytes:
        return (
            b"\x04"
            + struct.pack(">I", V1_FIXED_TIMESTAMP)
            + bytes([PK_RSA])
            + mpi(self.n)
            + mpi(self.e)
        )

    def packet(self) -> bytes:
        return packet(TAG_PUBLIC_KEY, self.packet_body())

    @property
    def id(self) -> str:
        """The ``sign-key-sha3-384`` / ``public-key-sha3-384`` key id."""
        return sha3_384_digest(b"\x01" + self.packet())

    @property
    def fingerprint(self) -> bytes:
        """OpenPGP v4 fingerprint of the canonical packet (what gpg shows for snap keys)."""
        body = self.packet_body()
        return hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).digest()

    @property
    def openpgp_key_id(self) -> bytes:
        return self.fingerprint[-8:]

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    def encode(self) -> str:
        """The v1 base64 text: an account-key body, ``snap export-key`` output (without ``\\n``)."""
        return encode_v1(self.packet())

    @classmethod
    def decode(cls, text: str | bytes) -> PublicKey:
        """Parse a v1-encoded public key; raises :class:`AssertionFormatError`."""
        try:
            pkt = decode_v1(text, "public key")
            tag, body, end = read_packet(pkt)
            if end != len(pkt):
                raise ValueError("public key has spurious trailing data")
            if tag != TAG_PUBLIC_KEY:
                raise ValueError(f"expected public key packet, got packet type {tag}")
            return cls.from_packet_body(body)
        except ValueError as exc:
            raise AssertionFormatError(f"cannot decode public key: {exc}") from None

    @classmethod
    def from_packet_body(cls, body: bytes) -> PublicKey:
        key, _ = cls._parse_body(body)
        return key

    @classmethod
    def _parse_body(cls, body: bytes) -> tuple[PublicKey, int]:
        if len(body) < 6:
            raise ValueError("truncated public key packet")
        if body[0] != 4:
            raise ValueError(f"unsupported public key packet version {body[0]}")
        if body[5] not in (1, 2, 3):
            raise ValueError(f"expected RSA public key, got algorithm {body[5]}")
        n, pos = read_mpi(body, 6)
        e, pos = read_mpi(body, pos)
        if n == 0 or e == 0:
            raise ValueError("invalid RSA public key")
        return cls(n, e), pos

    def to_crypto(self) -> rsa.RSAPublicKey:
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.RSAPublicNumbers(self.e, self.n).public_key()

    def verify(self, content: bytes, signature: Signature) -> None:
        """Check *signature* over *content*; raises :class:`AssertionVerifyError`."""
        if signature.pk_algo not in (1, 3):
            raise AssertionVerifyError("failed signature verification: signature is not RSA")
        if signature.hash_algo != HASH_SHA512:
            raise AssertionVerifyError(
                f"failed signature verification: unsupported hash algorithm {signature.hash_algo}"
            )
        digest = signature.digest(content)
        if digest[:2] != signature.hash_tag:
            raise AssertionVerifyError("failed signature verification: hash tag doesn't match")
        if _signature_too_long(signature.value, self.n):
            raise AssertionVerifyError("failed signature verification: signature is too long")
        if not pkcs1_sha512_valid(self.n, self.e, signature.value, digest):
            raise AssertionVerifyError(
                "failed signature verification: crypto/rsa: verification error"
            )


def _signature_too_long(s: int, n: int) -> bool:
    """Longer than the modulus in bytes (snapd's "signature is too long")."""
    return s.bit_length() > (n.bit_length() + 7) // 8 * 8


@functools.lru_cache(maxsize=1024)
def pkcs1_sha512_valid(n: int, e: int, s: int, digest: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of a SHA-512 *digest*.

    The whole expected encoding is built and compared: nothing is parsed out of the
    decrypted block.  Memoized: a build checks the same account-key signatures once
    per snap, and Python's pow() takes ~0.6 ms for a 4096-bit key.
    """
    size = (n.bit_length() + 7) // 8
    expected_len = len(SHA512_DIGEST_INFO) + len(digest)
    # a usable RSA key has an odd exponent of at least 3 (e = 1 would sign anything);
    # keys from untrusted assertions are bounded before any arithmetic, as Go's
    # crypto/rsa (e < 2**31) and OpenSSL (n of at most 16384 bits) do: a huge n or
    # e would otherwise cost minutes of pow()
    if e < 3 or not e & 1 or e > MAX_RSA_EXPONENT or n.bit_length() > MAX_RSA_BITS:
        return False
    if s >= n or size < expected_len + 11:
        return False
    encoded = pow(s, e, n).to_bytes(size, "big")
    expected = b"\x00\x01" + b"\xff" * (size - expected_len - 3) + b"\x00" + SHA512_DIGEST_INFO
    return hmac.compare_digest(encoded, expected + digest)


class PrivateKey:
    """An RSA private key that signs assertions."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self._public = PublicKey.from_crypto(key.public_key())

    @classmethod
    def generate(cls, bits: int = 4096) -> PrivateKey:
        from cryptography.hazmat.primitives.asymmetric import rsa

        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_numbers(cls, n: int, e: int, d: int, p: int, q: int) -> PrivateKey:
        from cryptography.hazmat.primitives.asymmetric import rsa

        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=rsa.rsa_crt_dmp1(d, p),
            dmq1=rsa.rsa_crt_dmq1(d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        return cls(numbers.private_key())

    def public_key(self) -> PublicKey:
        return self._public

    @property
    def id(self) -> str:
        return self._public.id

    @property
    def bits(self) -> int:
        return self._key.key_size

    def to_crypto(self) -> rsa.RSAPrivateKey:
        return self._key

    # serialization: our key file format is PKCS#8 PEM, encrypted when there is a passphrase
    def to_pem(self, passphrase: str | bytes | None = None) -> bytes:
        from cryptography.hazmat.primitives import serialization

        if passphrase:
            pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
            enc: serialization.KeySerializationEncryption = serialization.BestAvailableEncryption(
                pw
            )
        else:
            enc = serialization.NoEncryption()
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
        )

    @classmethod
    def from_pem(
        cls, data: bytes, passphrase: str | bytes | None = None, *, validate: bool = True
    ) -> PrivateKey:
        """Load our key file format (PKCS#8 or PKCS#1 PEM); raises :class:`KeyringError`.

        ``validate=False`` skips the (0.5 s) RSA consistency check, for files we wrote;
        signing verifies each new signature anyway.
        """
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        encrypted = b"ENCRYPTED" in data[:200]
        if encrypted and not pw:
            raise KeyringError(
                "key is protected by a passphrase", hint="give it with --passphrase-file"
            )
        try:
            key = serialization.load_pem_private_key(
                data,
                password=pw if encrypted else None,
                unsafe_skip_rsa_key_validation=not validate,
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            if encrypted:
                raise KeyringError("wrong passphrase for key") from None
            raise KeyringError(f"cannot read private key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyringError("only RSA keys can sign assertions")
        return cls(key)

    def sign(
        self, content: bytes, *, when: dt.datetime | None = None, style: str = "snapd"
    ) -> Signature:
        """Sign *content*; *style* picks the subpacket layout (see :data:`SIGNATURE_STYLES`)."""
        if when is None:
            when = dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        created = int(when.timestamp())
        time_sub = subpacket(SUB_CREATION_TIME, struct.pack(">I", created))
        if style == "snapd":
            hashed, unhashed = time_sub, b""
        elif style == "gnupg":
            fpr = self._public.fingerprint
            hashed = subpacket(SUB_ISSUER_FINGERPRINT, b"\x04" + fpr) + time_sub
            unhashed = subpacket(SUB_ISSUER, fpr[-8:])
        else:
            raise ValueError(f"unknown signature style {style!r}")
        sig = Signature(
            sig_type=0,
            pk_algo=PK_RSA,
            hash_algo=HASH_SHA512,
            hashed=hashed,
            unhashed=unhashed,
            hash_tag=b"",
            value=0,
        )
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, utils

        digest = sig.digest(content)
        raw = self._key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA512()))
        return Signature(
            sig_type=0,
            pk_algo=PK_RSA,
            hash_algo=HASH_SHA512,
            hashed=hashed,
            unhashed=unhashed,
            hash_tag=digest[:2],
            value=int.from_bytes(raw, "big"),
        )


def subpacket(kind: int, data: bytes) -> bytes:
    n = len(data) + 1
    if n < 192:
        length = bytes([n])
    elif n < 16320:
        length = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    else:
        length = b"\xff" + struct.pack(">I", n)
    return length + bytes([kind]) + data


def parse_subpackets(data: bytes) -> list[tuple[int, bool, bytes]]:
    """(type, critical, data) for each subpacket; ValueError when malformed."""
    out: list[tuple[int, bool, bytes]] = []
    pos = 0
    while pos < len(data):
        o1 = data[pos]
        if o1 < 192:
            n, pos = o1, pos + 1
        elif o1 < 255:
            if pos + 2 > len(data):
                raise ValueError("truncated subpacket")
            n, pos = ((o1 - 192) << 8) + data[pos + 1] + 192, pos + 2
        else:
            if pos + 5 > len(data):
                raise ValueError("truncated subpacket")
            n, pos = struct.unpack_from(">I", data, pos + 1)[0], pos + 5
        if n == 0 or pos + n > len(data):
            raise ValueError("truncated subpacket")
        kind = data[pos]
        out.append((kind & 0x7F, bool(kind & 0x80), data[pos + 1 : pos + n]))
        pos += n
    return out


@dataclass(frozen=True)
class Signature:
    """A v4 OpenPGP signature packet."""

    sig_type: int
    pk_algo: int
    hash_algo: int
    hashed: bytes
    unhashed: bytes
    hash_tag: bytes
    value: int

    def hashed_portion(self) -> bytes:
        return (
            bytes([4, self.sig_type, self.pk_algo, self.hash_algo])
            + struct.pack(">H", len(self.hashed))
            + self.hashed
        )

    def digest(self, content: bytes) -> bytes:
        portion = self.hashed_portion()
        h = hashlib.sha512()
        h.update(content)
        h.update(portion)
        h.update(b"\x04\xff" + struct.pack(">I", len(portion)))
        return h.digest()

    @property
    def created(self) -> dt.datetime:
        for kind, _, data in parse_subpackets(self.hashed):
            if kind == SUB_CREATION_TIME and len(data) == 4:
                return dt.datetime.fromtimestamp(struct.unpack(">I", data)[0], dt.UTC)
        raise ValueError("no creation time in signature")

    @property
    def issuer(self) -> bytes | None:
        for kind, _, data in parse_subpackets(self.hashed) + parse_subpackets(self.unhashed):
            if kind == SUB_ISSUER and len(data) == 8:
                return data
        return None

    def packet(self) -> bytes:
        body = (
            self.hashed_portion()
            + struct.pack(">H", len(self.unhashed))
            + self.unhashed
            + self.hash_tag
            + mpi(self.value)
        )
        return packet(TAG_SIGNATURE, body)

    def encode(self) -> str:
        return encode_v1(self.packet())

    @classmethod
    def decode(cls, text: str | bytes) -> Signature:
        """Parse a v1 signature; raises :class:`AssertionFormatError` naming the problem."""
        try:
            pkt = decode_v1(text, "signature")
            tag, body, end = read_packet(pkt)
            if end != len(pkt):
                raise ValueError("signature has spurious trailing data")
            if tag != TAG_SIGNATURE:
                raise ValueError(f"expected signature packet, got packet type {tag}")
            return cls._parse_body(body)
        except (ValueError, struct.error) as exc:
            raise AssertionFormatError(f"cannot decode signature: {exc}") from None

    @classmethod
    def _parse_body(cls, body: bytes) -> Signature:
        if len(body) < 6:
            raise ValueError("truncated signature packet")
        if body[0] != 4:
            raise ValueError(f"unsupported signature packet version {body[0]}")
        sig_type, pk_algo, hash_algo = body[1], body[2], body[3]
        n_hashed = struct.unpack_from(">H", body, 4)[0]
        pos = 6 + n_hashed
        if pos + 2 > len(body):
            raise ValueError("truncated signature packet")
        hashed = body[6:pos]
        n_unhashed = struct.unpack_from(">H", body, pos)[0]
        unhashed = body[pos + 2 : pos + 2 + n_unhashed]
        pos += 2 + n_unhashed
        if pos + 2 > len(body):
            raise ValueError("truncated signature packet")
        hash_tag = body[pos : pos + 2]
        value, end = read_mpi(body, pos + 2)
        if end != len(body):
            raise ValueError("signature packet has trailing data")
        has_time = False
        for kind, critical, data in parse_subpackets(hashed):
            if kind == SUB_CREATION_TIME:
                if len(data) != 4:
                    raise ValueError("invalid creation time subpacket")
                has_time = True
            elif critical and kind not in (SUB_ISSUER, SUB_ISSUER_FINGERPRINT):
                raise ValueError(f"unsupported critical subpacket {kind}")
        for kind, critical, _ in parse_subpackets(unhashed):
            if critical and kind not in (SUB_ISSUER, SUB_ISSUER_FINGERPRINT):
                raise ValueError(f"unsupported critical subpacket {kind}")
        if not has_time:
            raise ValueError("no creation time in signature")
        return cls(sig_type, pk_algo, hash_algo, hashed, unhashed, hash_tag, value)
