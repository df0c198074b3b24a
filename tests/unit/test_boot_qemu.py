"""ucimage boot: plan validation, console watching and verdicts (no real VM)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ucimage.boot.qemu import (
    BootError,
    BootPlan,
    ConsoleWatcher,
    clean_console,
    kvm_usable,
    plan_boot,
    run_boot,
)
from ucimage.cli.main import main
from ucimage.errors import UsageError
from ucimage.run import which

needs_qemu = pytest.mark.skipif(
    which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed"
)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "pc.img"
    path.write_bytes(b"\0" * 4096)
    return path


def test_clean_console_strips_escape_codes() -> None:
    raw = "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[0m\x1b[37m\x1b[40mWelcome to GRUB!\r"
    assert clean_console(raw) == "Welcome to GRUB!"


def test_watcher_expect_on_complete_line_only() -> None:
    w = ConsoleWatcher(expect="MARKER model=")
    w.feed(b"boot...\nMARKER model=a/")
    assert w.verdict is None  # a half line is not matched: the rest may still come
    w.feed(b"b base=x\n")
    assert w.verdict is not None
    assert w.verdict[0] == "expected"
    assert w.verdict[2] == "MARKER model=a/b base=x"


def test_watcher_expect_on_idle_partial_line() -> None:
    w = ConsoleWatcher(expect="login: ")
    w.feed(b"ubuntu login: ")
    assert w.verdict is None
    w.idle()
    assert w.verdict is not None and w.verdict[0] == "expected"


def test_watcher_grub_failure_names_first_error() -> None:
    w = ConsoleWatcher(expect="MARKER")
    w.feed(b"\x1b[0mWelcome to GRUB!\r\n  Booting `Ubuntu Core'\r\n")
    w.feed(b"error: unknown filesystem.\r\nerror: you need to load the kernel first.\r\n\r\n")
    w.feed(b"Press any key to continue...")
    assert w.verdict is not None
    outcome, reason, _ = w.verdict
    assert outcome == "failure"
    assert reason.startswith("GRUB menu entry failed: GRUB error: unknown filesystem.")
    assert [name for name, _ in w.milestones] == ["grub"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"grub rescue> ", "GRUB rescue shell"),
        (b"\r\ngrub> ", "GRUB shell"),
        (b"[ 3.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n", "kernel panic"),
        (b"UCIMAGE-REFERENCE-FAIL: initramfs: base snap x missing\n", "reference-platform"),
        (b"GRUB GRUB GRUB GRUB GRUB ", "MBR points to no GRUB"),
        (b"No bootable device.\n", "no bootable device"),
    ],
)
def test_watcher_known_failures(text: bytes, reason: str) -> None:
    w = ConsoleWatcher(expect="MARKER")
    w.feed(text)
    assert w.verdict is not None
    assert w.verdict[0] == "failure"
    assert w.verdict[1].startswith(reason)


def test_watcher_utf8_split_across_reads() -> None:
    w = ConsoleWatcher(expect=None)
    data = "ucimage-ref✓\n".encode()
    w.feed(data[:-3])
    w.feed(data[-3:])
    assert w.lines == ["ucimage-ref✓"]


def test_kvm_usable_answers_with_a_reason() -> None:
    usable, why = kvm_usable()
    assert isinstance(usable, bool) and why


@needs_qemu
def test_plan_bios_tcg_snapshot(image: Path) -> None:
    plan = plan_boot(image, kvm="off", expect="X", timeout=5)
    argv = list(plan.argv)
    assert plan.accel == "tcg"
    assert argv[argv.index("-machine") + 1] == "pc,accel=tcg"
    assert "-snapshot" in argv and "-no-reboot" in argv and "-nographic" in argv
    assert f"file={image},format=raw,if=ide" in argv
    assert "-bios" not in argv
    assert argv[argv.index("-nic") + 1] == "none"


@needs_qemu
def test_plan_uefi_ssh_no_snapshot(image: Path, tmp_path: Path) -> None:
    fw = tmp_path / "OVMF.fd"
    fw.write_bytes(b"fw")
    plan = plan_boot(
        image, uefi=True, firmware_file=fw, ssh_port=8022, snapshot=False, memory_mib=256, smp=2
    )
    argv = list(plan.argv)
    assert argv[argv.index("-bios") + 1] == str(fw)
    assert "hostfwd=tcp:127.0.0.1:8022-:22" in argv[argv.index("-nic") + 1]
    assert "-snapshot" not in argv
    assert argv[argv.index("-m") + 1] == "256" and argv[argv.index("-smp") + 1] == "2"


@needs_qemu
def test_plan_detects_qcow2(tmp_path: Path) -> None:
    img = tmp_path / "pc.qcow2"
    img.write_bytes(b"QFI\xfb" + b"\0" * 100)
    assert plan_boot(img).drive_format == "qcow2"


def test_plan_rejects_bad_input(image: Path, tmp_path: Path) -> None:
    with pytest.raises(BootError, match="not found"):
        plan_boot(tmp_path / "missing.img")
    with pytest.raises(UsageError, match="not a valid regex"):
        plan_boot(image, expect="(")
    with pytest.raises(UsageError, match="timeout"):
        plan_boot(image, timeout=0)
    with pytest.raises(UsageError, match="memory"):
        plan_boot(image, memory_mib=1)
    with pytest.raises(UsageError, match="ssh-port"):
        plan_boot(image, ssh_port=70000)
    with pytest.raises(BootError, match="firmware"):
        plan_boot(image, uefi=True, firmware_file=tmp_path / "nope.fd")


def _fake_vm(image: Path, script: str, **kwargs: Any) -> BootPlan:
    """A plan whose "QEMU" is a Python script printing a console."""
    plan = plan_boot(image, kvm="off", **kwargs)
    return dataclasses.replace(plan, argv=(sys.executable, "-u", "-c", script))


@needs_qemu
def test_run_boot_expect_stops_the_vm(image: Path, tmp_path: Path) -> None:
    script = (
        "import time\nprint('hello', flush=True)\nprint('MARKER ok', flush=True)\ntime.sleep(60)"
    )
    log = tmp_path / "log"
    plan = _fake_vm(image, script, expect="MARKER", timeout=30, log=log)
    start = time.monotonic()
    result = run_boot(plan)
    assert result.ok and result.outcome == "expected"
    assert time.monotonic() - start < 10
    assert result.matched == "MARKER ok"
    assert log.read_text() == "hello\nMARKER ok\n"


@needs_qemu
def test_run_boot_timeout_kills(image: Path) -> None:
    plan = _fake_vm(
        image,
        "import time\nprint('GRUB loading.', flush=True)\ntime.sleep(60)",
        expect="MARKER",
        timeout=1.5,
    )
    result = run_boot(plan)
    assert not result.ok and result.outcome == "timeout"
    assert "timeout after 1.5s" in result.reason and "GRUB loading." in result.reason
    assert result.elapsed < 10


@needs_qemu
def test_run_boot_exit_without_expect(image: Path) -> None:
    ok = run_boot(_fake_vm(image, "print('bye')"))
    assert ok.ok and ok.outcome == "exited"
    missed = run_boot(_fake_vm(image, "print('bye')", expect="MARKER"))
    assert not missed.ok and "powered off without" in missed.reason
    crashed = run_boot(_fake_vm(image, "import sys\nsys.stderr.write('qemu: bad\\n')\nsys.exit(1)"))
    assert not crashed.ok and crashed.outcome == "qemu-error" and "qemu: bad" in crashed.reason


@needs_qemu
def test_cli_boot_dry_run(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot", str(image), "--dry-run", "--kvm", "off", "--uefi"]) == 0
    out = capsys.readouterr().out
    assert '"firmware": "uefi"' in out and "-snapshot" in out


def test_cli_boot_missing_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot", str(tmp_path / "nope.img")]) == 1
    err = capsys.readouterr().err
    assert "error: image" in err and "hint:" in err


def test_watcher_waits_for_the_whole_failure_line() -> None:
    w = ConsoleWatcher(expect="MARKER")
    w.feed(b"UCIMAGE-REFERENCE-FAIL:")
    assert w.verdict is None  # the reason is still on its way
    w.feed(b' base: cannot find signatures with metadata for snap "pc"\r\n')
    assert w.verdict is not None
    assert w.verdict[1].endswith('snap "pc"')
    idle = ConsoleWatcher(expect="MARKER")
    idle.feed(b"UCIMAGE-REFERENCE-FAIL: initramfs: no writable")
    idle.idle()
    assert idle.verdict is not None and "no writable" in idle.verdict[1]


@needs_qemu
@pytest.mark.parametrize(
    "why",
    [
        "no /dev/kvm",
        "/dev/kvm is not accessible (add yourself to group kvm)",
        "/dev/kvm exists but the CPU has no vmx/svm (paravirtual KVM is too slow)",
    ],
)
def test_cli_boot_kvm_on_refused_when_kvm_is_unusable(
    image: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    monkeypatch.setattr("ucimage.boot.qemu.kvm_usable", lambda: (False, why))
    assert main(["boot", str(image), "--dry-run", "--kvm", "on"]) == 1
    captured = capsys.readouterr()
    assert f"error: --kvm on, but KVM cannot be used here: {why}" in captured.err
    assert "hint: use --kvm auto" in captured.err
    assert "Traceback" not in captured.err and "qemu-system" not in captured.out
    # the same machine boots with --kvm auto, on TCG
    assert main(["boot", str(image), "--dry-run", "--kvm", "auto"]) == 0
    assert "accel=tcg" in capsys.readouterr().out


@needs_qemu
def test_cli_boot_kvm_on_follows_this_machine(
    image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No stub: refused exactly when kvm_usable() says no, with its reason."""
    usable, why = kvm_usable()
    rc = main(["boot", str(image), "--dry-run", "--kvm", "on"])
    captured = capsys.readouterr()
    if usable:
        assert rc == 0 and "accel=kvm" in captured.out
    else:
        assert rc == 1 and f"KVM cannot be used here: {why}" in captured.err


@needs_qemu
def test_cli_boot_kvm_on_when_usable(
    image: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ucimage.boot.qemu.kvm_usable", lambda: (True, "KVM available"))
    assert main(["boot", str(image), "--dry-run", "--kvm", "on"]) == 0
    assert "accel=kvm" in capsys.readouterr().out
