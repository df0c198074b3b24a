"""``ucimage boot``: boot a disk image in QEMU and give a pass/fail verdict.

:func:`plan_boot` validates the options and resolves them (firmware file,
accelerator, disk format) into a frozen :class:`BootPlan` holding the exact
QEMU command line; :func:`run_boot` starts QEMU, streams the serial console
(cleaned of terminal escape codes) to a callback and a log file, and ends the
VM as soon as the verdict is known:

* the ``expect`` regex is seen on the console: success;
* a known failure line is seen (GRUB errors, GRUB's rescue shell, a kernel
  panic, firmware finding nothing to boot, the reference platform's FAIL
  line): failure, with that line as the reason;
* the timeout passes: failure, QEMU is killed;
* QEMU exits on its own: success only if no ``expect`` was asked for and it
  exited 0.
"""

from __future__ import annotations

import codecs
import os
import re
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from ucimage.errors import UcimageError, UsageError
from ucimage.run import require_tool, spawn

Firmware = Literal["bios", "uefi"]
KvmMode = Literal["auto", "on", "off"]
Outcome = Literal["expected", "exited", "failure", "timeout", "qemu-error"]

QEMU = "qemu-system-x86_64"

#: where Debian/Ubuntu's ovmf package puts the single-file firmware
OVMF_CANDIDATES: tuple[str, ...] = (
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF.fd",
    "/usr/share/qemu/OVMF.fd",
)

#: (name, regex) of console lines that end a boot as failed
FAILURE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("reference-platform failure", r"UCIMAGE-REFERENCE-FAIL: .*"),
    ("kernel panic", r"Kernel panic - not syncing.*"),
    ("GRUB menu entry failed", r"Press any key to continue"),
    ("GRUB rescue shell", r"grub rescue>"),
    ("GRUB shell (no usable grub.cfg)", r"^grub> ?$"),
    ("MBR points to no GRUB core.img", r"GRUB GRUB GRUB"),
    ("no bootable device", r"No bootable device.*"),
    ("UEFI found nothing to boot", r"UEFI Interactive Shell.*"),
    ("root filesystem not mounted", r"VFS: Unable to mount root fs.*"),
)
#: failures that show up as a prompt or an endless line, never ended by a
#: newline: matched on the unfinished last line too (the others wait for the
#: end of their line, so the reason is complete)
PROMPT_FAILURES: frozenset[str] = frozenset(
    {
        "GRUB menu entry failed",
        "GRUB rescue shell",
        "GRUB shell (no usable grub.cfg)",
        "MBR points to no GRUB core.img",
    }
)

#: (name, regex) of console lines recorded as timed milestones
MILESTONE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("grub", r"Welcome to GRUB|ucimage-reference: grub started|GNU GRUB"),
    ("kernel", r"Linux version \d"),
    ("initramfs", r"ucimage-reference: initramfs started|Run /init as init process"),
    ("base", r"ucimage-reference: base init started"),
)

_ANSI = re.compile(r"\x1b(\[[0-9;=?]*[ -/]*[@-~]|[()][A-Za-z0-9]|[@-Z\\-_])")
_GRUB_ERROR = re.compile(r"\berror: .*")


def clean_console(text: str) -> str:
    """Drop terminal escape sequences, carriage returns and other control chars."""
    text = _ANSI.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or ch >= " ")


class BootError(UcimageError):
    """The VM cannot be started as asked."""

    code = "boot"


@dataclass(frozen=True)
class BootPlan:
    """One fully resolved QEMU run."""

    image: Path
    firmware: Firmware
    firmware_file: Path | None
    accel: Literal["kvm", "tcg"]
    accel_reason: str
    memory_mib: int
    smp: int
    drive_format: Literal["raw", "qcow2"]
    drive_interface: Literal["ide", "virtio"]
    ssh_port: int | None
    snapshot: bool
    timeout: float
    expect: str | None
    log: Path | None
    argv: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "image": str(self.image),
            "firmware": self.firmware,
            "firmware-file": str(self.firmware_file) if self.firmware_file else None,
            "accel": self.accel,
            "accel-reason": self.accel_reason,
            "memory-mib": self.memory_mib,
            "smp": self.smp,
            "drive-format": self.drive_format,
            "drive-interface": self.drive_interface,
            "ssh-port": self.ssh_port,
            "snapshot": self.snapshot,
            "timeout": self.timeout,
            "expect": self.expect,
            "log": str(self.log) if self.log else None,
            "argv": list(self.argv),
        }


@dataclass(frozen=True)
class BootResult:
    """What happened: the verdict, why, when, and the whole console."""

    ok: bool
    outcome: Outcome
    reason: str
    elapsed: float
    milestones: tuple[tuple[str, float], ...]
    console: str
    returncode: int | None
    stderr: str = ""
    matched: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "outcome": self.outcome,
            "reason": self.reason,
            "elapsed": round(self.elapsed, 2),
            "milestones": {name: round(t, 2) for name, t in self.milestones},
            "returncode": self.returncode,
            "matched": self.matched,
        }


def kvm_usable() -> tuple[bool, str]:
    """Whether hardware KVM works here, and why not.

    ``/dev/kvm`` alone is not enough: some hosts expose a paravirtual KVM
    (e.g. KVM-PVM) without VT-x/AMD-V, on which guests crawl; we require the
    vmx or svm CPU flag too.
    """
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not accessible (add yourself to group kvm)"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False, "cannot read /proc/cpuinfo"
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    if not flags & {"vmx", "svm"}:
        return False, "/dev/kvm exists but the CPU has no vmx/svm (paravirtual KVM is too slow)"
    return True, "KVM available"


def find_ovmf() -> Path:
    for candidate in OVMF_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise BootError(
        "UEFI firmware (OVMF.fd) not found",
        hint="install it: apt-get install ovmf",
    )


def _detect_format(image: Path) -> Literal["raw", "qcow2"]:
    with image.open("rb") as f:
        magic = f.read(4)
    return "qcow2" if magic == b"QFI\xfb" else "raw"


def plan_boot(
    image: Path,
    *,
    uefi: bool = False,
    kvm: KvmMode = "auto",
    memory_mib: int = 512,
    smp: int = 1,
    ssh_port: int | None = None,
    snapshot: bool = True,
    timeout: float = 180.0,
    expect: str | None = None,
    log: Path | None = None,
    virtio: bool = False,
    firmware_file: Path | None = None,
) -> BootPlan:
    """Validate the options and build the QEMU command line."""
    if not image.is_file():
        raise BootError(f"image {str(image)!r} not found", hint="build one with 'ucimage snap'")
    if not os.access(image, os.R_OK):
        raise BootError(f"image {str(image)!r} is not readable")
    if memory_mib < 64:
        raise UsageError(f"--memory {memory_mib}: need at least 64 MiB")
    if smp < 1:
        raise UsageError(f"--smp {smp}: need at least 1 CPU")
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout}: must be positive")
    if ssh_port is not None and not 0 < ssh_port < 65536:
        raise UsageError(f"--ssh-port {ssh_port}: not a TCP port")
    if expect is not None:
        try:
            re.compile(expect)
        except re.error as exc:
            raise UsageError(f"--expect {expect!r} is not a valid regex: {exc}") from exc
    if not snapshot and not os.access(image, os.W_OK):
        raise BootError(
            f"image {str(image)!r} is read-only", hint="boot with --snapshot (the default)"
        )
    qemu = require_tool(QEMU)
    fw: Path | None = None
    if uefi:
        fw = firmware_file or find_ovmf()
        if not fw.is_file():
            raise BootError(f"UEFI firmware {str(fw)!r} not found", hint="apt-get install ovmf")
    usable, why = kvm_usable()
    if kvm == "off":
        accel: Literal["kvm", "tcg"] = "tcg"
        reason = "KVM disabled by --kvm off"
    elif kvm == "on":
        if not usable:
            raise BootError(
                f"--kvm on, but KVM cannot be used here: {why}",
                hint="use --kvm auto (falls back to TCG when KVM is unusable) or --kvm off",
            )
        accel, reason = "kvm", "KVM forced by --kvm on"
    else:
        accel, reason = ("kvm", why) if usable else ("tcg", f"TCG: {why}")
    fmt = _detect_format(image)
    interface: Literal["ide", "virtio"] = "virtio" if virtio else "ide"
    drive = f"file={image},format={fmt},if={interface}"
    argv = [
        qemu,
        "-machine",
        f"pc,accel={accel}",
        "-m",
        str(memory_mib),
        "-smp",
        str(smp),
        # -nographic (not just -display none) also makes QEMU tell SeaBIOS to
        # mirror the BIOS text console to the serial port, so GRUB's messages
        # and errors reach us under BIOS as they do under OVMF
        "-nographic",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-drive",
        drive,
    ]
    if accel == "kvm":
        argv += ["-cpu", "host"]
    if fw is not None:
        argv += ["-bios", str(fw)]
    if ssh_port is not None:
        argv += ["-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"]
    else:
        argv += ["-nic", "none"]
    if snapshot:
        argv.append("-snapshot")
    return BootPlan(
        image=image,
        firmware="uefi" if uefi else "bios",
        firmware_file=fw,
        accel=accel,
        accel_reason=reason,
        memory_mib=memory_mib,
        smp=smp,
        drive_format=fmt,
        drive_interface=interface,
        ssh_port=ssh_port,
        snapshot=snapshot,
        timeout=timeout,
        expect=expect,
        log=log,
        argv=tuple(argv),
    )


@dataclass
class ConsoleWatcher:
    """Feeds console text line by line against the expect/failure/milestone rules.

    Kept apart from the process handling so it can be tested with recorded
    console output.
    """

    expect: str | None
    on_line: Callable[[str], None] | None = None
    failures: tuple[tuple[str, str], ...] = FAILURE_PATTERNS
    milestone_rules: tuple[tuple[str, str], ...] = MILESTONE_PATTERNS
    clock: Callable[[], float] = time.monotonic
    start: float = 0.0
    lines: list[str] = field(default_factory=list)
    milestones: list[tuple[str, float]] = field(default_factory=list)
    verdict: tuple[Outcome, str, str] | None = None  # outcome, reason, matched text
    _pending: str = ""
    _idle_seen: str = ""
    _grub_errors: list[str] = field(default_factory=list)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )

    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        self._pending += text
        while "\n" in self._pending:
            raw, self._pending = self._pending.split("\n", 1)
            self._line(clean_console(raw), complete=True)
            if self.verdict:
                return
        # prompts ("grub rescue> ") never end with a newline: check the tail
        # for failures now; for the expect regex only once the line is idle
        # (see :meth:`idle`), so a marker line is not cut in half
        if self._pending:
            self._check(clean_console(self._pending), complete=False)

    def idle(self) -> None:
        """No output for a while: a partial last line is all there will be for now."""
        if self._pending and self.verdict is None and self._pending != self._idle_seen:
            self._idle_seen = self._pending  # judge each unfinished line once
            self._check(clean_console(self._pending), complete=True)

    def finish(self) -> None:
        if self._pending:
            self._line(clean_console(self._pending), complete=True)
            self._pending = ""

    def _line(self, line: str, complete: bool) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)
        self._check(line, complete)

    def _check(self, line: str, complete: bool) -> None:
        if self.verdict:
            return
        now = self.clock() - self.start
        seen = {name for name, _ in self.milestones}
        for name, rule in self.milestone_rules:
            if name not in seen and re.search(rule, line):
                self.milestones.append((name, now))
        if complete:
            if "Booting `" in line:
                self._grub_errors.clear()  # errors of an earlier menu entry
            grub_error = _GRUB_ERROR.search(line)
            if grub_error:
                self._grub_errors.append(grub_error.group(0).strip())
        if self.expect is not None and complete:
            m = re.search(self.expect, line)
            if m:
                self.milestones.append(("expected", now))
                self.verdict = ("expected", f"saw {self.expect!r}", line.strip())
                return
        for name, rule in self.failures:
            if not complete and name not in PROMPT_FAILURES:
                continue
            m = re.search(rule, line.strip() if rule.startswith("^") else line)
            if m:
                detail = m.group(0).strip()
                if name == "GRUB menu entry failed" and self._grub_errors:
                    # the first error is the cause, the rest its consequences
                    detail = "GRUB " + "; then ".join(self._grub_errors)
                self.verdict = ("failure", f"{name}: {detail}", line.strip())
                return

    @property
    def console(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def run_boot(
    plan: BootPlan,
    on_line: Callable[[str], None] | None = None,
) -> BootResult:
    """Boot *plan* and return the verdict; QEMU never outlives this call."""
    start = time.monotonic()
    watcher = ConsoleWatcher(expect=plan.expect, on_line=on_line, start=start)
    log_file: IO[str] | None = None
    if plan.log is not None:
        plan.log.parent.mkdir(parents=True, exist_ok=True)
        log_file = plan.log.open("w", encoding="utf-8")

        def tee(line: str) -> None:
            assert log_file is not None
            log_file.write(line + "\n")
            log_file.flush()
            if on_line is not None:
                on_line(line)

        watcher.on_line = tee
    proc = spawn(plan.argv)
    assert proc.stdout is not None and proc.stderr is not None
    stderr_chunks: list[bytes] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    open_streams = 2
    timed_out = False
    last_output = start
    try:
        while open_streams and watcher.verdict is None:
            remaining = plan.timeout - (time.monotonic() - start)
            if remaining <= 0:
                timed_out = True
                break
            events = sel.select(timeout=min(remaining, 0.5))
            if not events and time.monotonic() - last_output > 1.0:
                watcher.idle()
            for key, _ in events:
                fileobj = key.fileobj
                assert hasattr(fileobj, "fileno")
                chunk = os.read(fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(fileobj)
                    open_streams -= 1
                    continue
                if key.data == "out":
                    last_output = time.monotonic()
                    watcher.feed(chunk)
                else:
                    stderr_chunks.append(chunk)
        if watcher.verdict is None and not timed_out:
            watcher.finish()
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except Exception:  # a process that ignores SIGKILL is beyond our reach
            pass
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        if log_file is not None:
            log_file.close()
    elapsed = time.monotonic() - start
    stderr = b"".join(stderr_chunks).decode("utf-8", "replace").strip()
    milestones = tuple(watcher.milestones)
    if watcher.verdict is not None:
        outcome, reason, matched = watcher.verdict
        return BootResult(
            ok=outcome == "expected",
            outcome=outcome,
            reason=reason,
            elapsed=elapsed,
            milestones=milestones,
            console=watcher.console,
            returncode=proc.returncode,
            stderr=stderr,
            matched=matched,
        )
    last = next((line.strip() for line in reversed(watcher.lines) if line.strip()), "")
    if timed_out:
        what = f"no {plan.expect!r} on the console" if plan.expect else "the VM did not power off"
        return BootResult(
            ok=False,
            outcome="timeout",
            reason=f"timeout after {plan.timeout:g}s: {what}; last console line: {last!r}",
            elapsed=elapsed,
            milestones=milestones,
            console=watcher.console,
            returncode=proc.returncode,
            stderr=stderr,
        )
    rc = proc.returncode
    if rc != 0:
        detail = stderr.splitlines()[-1] if stderr else f"exit status {rc}"
        return BootResult(
            ok=False,
            outcome="qemu-error",
            reason=f"QEMU failed: {detail}",
            elapsed=elapsed,
            milestones=milestones,
            console=watcher.console,
            returncode=rc,
            stderr=stderr,
        )
    if plan.expect is not None:
        return BootResult(
            ok=False,
            outcome="exited",
            reason=f"the VM powered off without printing {plan.expect!r}; "
            f"last console line: {last!r}",
            elapsed=elapsed,
            milestones=milestones,
            console=watcher.console,
            returncode=rc,
            stderr=stderr,
        )
    return BootResult(
        ok=True,
        outcome="exited",
        reason="the VM powered off",
        elapsed=elapsed,
        milestones=milestones,
        console=watcher.console,
        returncode=rc,
        stderr=stderr,
    )
