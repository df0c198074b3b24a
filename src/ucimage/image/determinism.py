"""Deterministic stand-ins for everything mkfs and partitioners would randomise.

One seed per volume (from ``SOURCE_DATE_EPOCH`` and the volume name, or an
explicit ``--seed``) yields, through SHA-256 with a purpose string, the disk
GUID or MBR signature, partition GUIDs, filesystem UUIDs, the ext4 hash seed
and the vfat volume id.  Same seed, same image; another seed, other values.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid

from ucimage.run import source_date_epoch

_DOMAIN = b"ucimage-disk-seed-v1\0"


def derive_seed(
    volume_name: str, *, epoch: int | None = None, explicit: str | None = None
) -> bytes:
    """The seed of one volume: from *explicit* when given, else from *epoch*.

    The volume name is always mixed in, so the volumes of one gadget get
    different GUIDs from the same ``SOURCE_DATE_EPOCH`` or ``--seed``.
    """
    if explicit is not None:
        material = b"seed\0" + explicit.encode()
    else:
        material = b"epoch\0" + str(epoch if epoch is not None else 0).encode()
    return hashlib.sha256(_DOMAIN + material + b"\0" + volume_name.encode()).digest()


def seed_and_timestamp(volume_name: str, *, explicit: str | None = None) -> tuple[bytes, int]:
    """Seed and image timestamp from the environment.

    ``SOURCE_DATE_EPOCH`` set: both come from it (reproducible).  Unset and no
    explicit seed: a random seed and the current time, like other image tools.
    """
    epoch = source_date_epoch()
    if explicit is not None:
        return derive_seed(volume_name, explicit=explicit), epoch if epoch is not None else 0
    if epoch is not None:
        return derive_seed(volume_name, epoch=epoch), epoch
    return derive_seed(volume_name, explicit=os.urandom(16).hex()), int(time.time())


def derive_bytes(seed: bytes, purpose: str, length: int = 32) -> bytes:
    if length > 32:
        raise ValueError("at most 32 derived bytes")
    return hashlib.sha256(seed + b"\0" + purpose.encode()).digest()[:length]


def derive_uuid(seed: bytes, purpose: str) -> uuid.UUID:
    """A version-4-shaped UUID derived from *seed* and *purpose*."""
    return uuid.UUID(bytes=derive_bytes(seed, purpose, 16), version=4)


def derive_u32(seed: bytes, purpose: str) -> int:
    """A non-zero 32-bit value (MBR disk signature, vfat volume id)."""
    value = int.from_bytes(derive_bytes(seed, purpose, 4), "little")
    return value or 1
