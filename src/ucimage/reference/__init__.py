"""The reference platform: bootable pc, pc-kernel, core18 and snapd snaps from Debian parts.

Sources live in the repository's top-level ``reference/`` (gadget.yaml,
grub.cfg, initramfs and base init scripts, module list, model JSON).

* :mod:`ucimage.reference.build`: ``plan_build(out_dir) -> ReferencePlan``,
  ``build(plan, progress) -> ReferenceSnaps`` (``.snaps``: name -> .snap path).
* :mod:`ucimage.reference.debian`: resolve/download/unpack Debian packages (cached).
* :mod:`ucimage.reference.console`: ``parse_device_report(console)``: the booted
  device's ``snap list`` and ``snap known model``; ``EXPECT`` is the regex for
  ``ucimage boot --expect``.
* :mod:`ucimage.reference.publish`: ``push_reference_snaps(url, token, snaps)``.
* :mod:`ucimage.reference.demo`: ``make demo``.
"""
