"""ext4/vfat data placement: copy_range copies in writeback-sized pieces, byte-exact."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from ucimage.image import ext4


@pytest.mark.parametrize("piece", [4096, 3 * 4096 + 512, 1 << 20])
def test_copy_range_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    monkeypatch.setattr(ext4, "WRITEBACK_CHUNK", piece)
    started: list[tuple[int, int]] = []
    real = ext4.start_writeback

    def record(fd: int, offset: int, count: int) -> None:
        started.append((offset, count))
        real(fd, offset, count)

    monkeypatch.setattr(ext4, "start_writeback", record)
    data = os.urandom(100_000)
    src_path, dst_path = tmp_path / "src", tmp_path / "dst"
    src_path.write_bytes(data)
    dst_path.write_bytes(b"\xaa" * 300_000)
    src = os.open(src_path, os.O_RDONLY)
    dst = os.open(dst_path, os.O_RDWR)
    try:
        ext4.copy_range(src, dst, 90_000, 1000, 123_456)
    finally:
        os.close(src)
        os.close(dst)
    out = dst_path.read_bytes()
    assert out[123_456 : 123_456 + 90_000] == data[1000:91_000]
    assert out[:123_456] == b"\xaa" * 123_456
    assert out[123_456 + 90_000 :] == b"\xaa" * (300_000 - 123_456 - 90_000)
    # every byte handed to writeback once, in order, in pieces of at most WRITEBACK_CHUNK
    assert started[0][0] == 123_456
    assert sum(c for _, c in started) == 90_000
    assert all(c <= piece for _, c in started)
    for (o1, c1), (o2, _) in itertools.pairwise(started):
        assert o1 + c1 == o2


def test_start_writeback_is_harmless_on_any_fd(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 8192)
    fd = os.open(path, os.O_RDWR)
    try:
        ext4.start_writeback(fd, 0, 8192)
        ext4.start_writeback(fd, 4096, 1 << 30)  # past the end: nothing to do
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 8192


@pytest.mark.parametrize("fail_at", [None, 2])
def test_writeback_thread_gets_every_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int | None
) -> None:
    # copy_range with a Writeback hands its pieces to the thread, in order, and
    # leaving the block waits for them all, also when the copy fails midway
    monkeypatch.setattr(ext4, "WRITEBACK_CHUNK", 8192)
    started: list[tuple[int, int, str]] = []
    real = ext4.start_writeback

    def record(fd: int, offset: int, count: int) -> None:
        import threading

        started.append((offset, count, threading.current_thread().name))
        real(fd, offset, count)

    monkeypatch.setattr(ext4, "start_writeback", record)
    data = os.urandom(50_000)
    (tmp_path / "src").write_bytes(data)
    (tmp_path / "dst").write_bytes(bytes(60_000))
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_RDWR)
    calls = 0
    real_cfr = os.copy_file_range

    def flaky(*args: int) -> int:
        nonlocal calls
        calls += 1
        if fail_at is not None and calls > fail_at:
            raise KeyboardInterrupt
        return real_cfr(*args)

    monkeypatch.setattr(os, "copy_file_range", flaky)
    try:
        with ext4.Writeback(dst) as wb:
            if fail_at is None:
                ext4.copy_range(src, dst, 50_000, 0, 1000, wb)
            else:
                with pytest.raises(KeyboardInterrupt):
                    ext4.copy_range(src, dst, 50_000, 0, 1000, wb)
        assert wb._thread is not None and not wb._thread.is_alive()
    finally:
        os.close(src)
        os.close(dst)
    assert all(name == "writeback" for _, _, name in started)
    if fail_at is None:
        assert (tmp_path / "dst").read_bytes()[1000:51_000] == data
        assert [(o, c) for o, c, _ in started] == [
            (1000 + i, min(8192, 50_000 - i)) for i in range(0, 50_000, 8192)
        ]
    else:
        assert len(started) == fail_at
