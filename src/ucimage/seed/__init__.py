"""snapd seeds, bootloader environments and manifests, written in pure Python.

* :mod:`.writer` — ``write_seed16`` (UC16/18: ``var/lib/snapd/seed/{seed.yaml,
  snaps/,assertions/}``, boot snap links, cloud-init/console-conf) and
  ``write_seed20`` (UC20+: ``snaps/`` and ``systems/<label>/{model,assertions/,
  options.yaml,snaps/}``); ``SeedSnap``, ``SeedAssertion``, ``Customizations``,
  ``system_label(epoch)``.
* :mod:`.bootloader` — grub/u-boot/lk/android-boot files for UC16/18 and the UC20+
  recovery bootloader (grub, u-boot ``boot.sel``, piboot, lk
  ``snaprecoverysel.bin``), kernel assets.
* :mod:`.bootenv` — owns the env formats: ``GrubEnv`` (1024-byte block),
  ``UbootEnv`` (CRC32, redundant flag byte, sorted entries) and ``LkEnv``
  (lk's binary boot select structs); each decodes what it encodes, and the
  ``scan_*`` readers report every problem (used by :mod:`ucimage.inspect`).
* :mod:`.manifest` — ``seed.manifest``/``snaps.manifest`` in ubuntu-image's format.
* :mod:`.model` — ``ModelInfo``: the model headers seeding needs, snapd's order.
"""
