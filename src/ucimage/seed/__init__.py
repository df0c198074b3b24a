"""snapd seeds, bootloader environments and manifests, written in pure Python.

* :mod:`.writer` — ``write_seed16`` (UC16/18: ``var/lib/snapd/seed/{seed.yaml,
  snaps/,assertions/}``, boot snap links, cloud-init/console-conf) and
  ``write_seed20`` (UC20+: ``snaps/`` and ``systems/<label>/{model,assertions/,
  options.yaml,snaps/}``); ``SeedSnap``, ``SeedAssertion``, ``Customizations``,
  ``system_label(epoch)``.
* :mod:`.bootloader` — grub/u-boot/android-boot files for UC16/18 and the UC20+
  recovery bootloader (grub, u-boot ``boot.sel``, piboot), kernel assets.
* :mod:`.bootenv` — ``GrubEnv`` (1024-byte block) and ``UbootEnv`` (CRC32,
  redundant flag byte, sorted entries); both decode what they encode.
* :mod:`.manifest` — ``seed.manifest``/``snaps.manifest`` in ubuntu-image's format.
* :mod:`.model` — ``ModelInfo``: the model headers seeding needs, snapd's order.
"""
