"""Block maps in bmaptool's XML format (version 2.0, SHA-256 checksums).

The mapped ranges come from the image file's own holes (``SEEK_DATA`` /
``SEEK_HOLE``), so a sparse image flashes with ``bmaptool copy`` writing only
the blocks that hold data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BMAP_BLOCK_SIZE = 4096
_ZERO_SUM = "0" * 64


def data_ranges(fd: int, size: int, block_size: int = BMAP_BLOCK_SIZE) -> list[tuple[int, int]]:
    """Inclusive block ranges that hold data (anything not a hole)."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole left
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        first, last = start // block_size, (min(end, size) - 1) // block_size
        if ranges and ranges[-1][1] >= first - 1:
            ranges[-1] = (ranges[-1][0], max(last, ranges[-1][1]))
        else:
            ranges.append((first, last))
        pos = end
    return ranges


def _range_sum(fd: int, first: int, last: int, size: int, block_size: int) -> str:
    digest = hashlib.sha256()
    pos, end = first * block_size, min((last + 1) * block_size, size)
    while pos < end:
        chunk = os.pread(fd, min(1 << 20, end - pos), pos)
        if not chunk:
            break
        digest.update(chunk)
        pos += len(chunk)
    return digest.hexdigest()


def write_bmap(image: Path, bmap: Path, block_size: int = BMAP_BLOCK_SIZE) -> None:
    """Write the block map of *image* to *bmap*."""
    fd = os.open(image, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        ranges = data_ranges(fd, size, block_size)
        lines = []
        for first, last in ranges:
            text = f"{first}-{last}" if last > first else f"{first}"
            lines.append(
                f'        <Range chksum="{_range_sum(fd, first, last, size, block_size)}"> '
                f"{text} </Range>\n"
            )
    finally:
        os.close(fd)
    blocks = (size + block_size - 1) // block_size
    mapped = sum(last - first + 1 for first, last in ranges)
    head = (
        '<?xml version="1.0" ?>\n'
        "<!-- Block map of a disk image written by ucimage; flash it with bmaptool copy -->\n"
        '<bmap version="2.0">\n'
        f"    <ImageSize> {size} </ImageSize>\n"
        f"    <BlockSize> {block_size} </BlockSize>\n"
        f"    <BlocksCount> {blocks} </BlocksCount>\n"
        f"    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n"
        "    <ChecksumType> sha256 </ChecksumType>\n"
        f"    <BmapFileChecksum> {_ZERO_SUM} </BmapFileChecksum>\n"
        "    <BlockMap>\n"
    )
    text = head + "".join(lines) + "    </BlockMap>\n</bmap>\n"
    checksum = hashlib.sha256(text.encode()).hexdigest()
    bmap.write_text(text.replace(_ZERO_SUM, checksum, 1))
