"""Boot disk images in QEMU with a verdict (``ucimage boot``).

API (from :mod:`ucimage.boot.qemu`):

``plan_boot(image, *, uefi=False, kvm="auto", memory_mib=512, smp=1, ssh_port=None,
snapshot=True, timeout=180.0, expect=None, log=None, virtio=False) -> BootPlan``
    Validates the options (raises :class:`BootError` / ``UsageError``) and
    resolves firmware, accelerator (``auto`` uses KVM only with vmx/svm, else
    TCG) and disk format into a frozen plan holding the QEMU argv.

``run_boot(plan, on_line=None) -> BootResult``
    Runs QEMU, feeds each cleaned serial-console line to ``on_line`` and to
    ``plan.log``; ends on ``expect`` (ok), a known failure line, the timeout
    (QEMU killed) or QEMU's exit. ``BootResult``: ``ok, outcome, reason,
    elapsed, milestones, console, returncode, matched``.
"""
