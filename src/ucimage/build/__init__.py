"""``ucimage snap MODEL``: from a signed model to bootable images, seed and manifests.

Plan, then execute (see :mod:`ucimage.build.pipeline`):

``BuildOptions`` (:mod:`.options`)
    Every flag of ``ucimage snap`` (ubuntu-image's plus ``--store``, ``--trusted``,
    ``--offline``, ``--seed``, ``--bmap``, ``--compress``, ``--json``);
    ``validate_options`` checks them all before any download.  ``STEP_NAMES``
    lists the steps: verify_model, resolve_snaps, fetch_snaps, load_gadget,
    compute_plan, write_seed, populate_volumes, build_volumes, write_manifests.

``BuildPlan`` / ``PlannedSnap`` (:mod:`.plan`)
    The immutable plan (frozen dataclasses); ``--dry-run`` prints ``to_json()``.

``ImageBuild(opts).run()`` (:mod:`.pipeline`)
    Runs the named steps with :func:`.runner.run_steps`: each logged and timed,
    the state saved to ``<workdir>/ucimage-build.json`` after each step so
    ``--until``/``--thru``/``--resume`` (and a restart after SIGKILL) work.
    Images are written as ``.<vol>.img.partial`` and renamed when complete.

``Progress`` (:mod:`.runner`)
    ``[N] step`` lines like ubuntu-image, or JSON lines with ``--json``
    (``build-start``, ``step-start``, ``step-done``, ``step-skipped``,
    ``message``, ``build-stopped``, ``build-done``, ``error``).

Sources (:mod:`.sources`): local ``.snap`` files and the store client (one
refresh for all snaps, parallel verified downloads with the cache; local files
the store knows by digest become asserted; ``--offline`` reuses the last
resolution and the cache).  Validation sets (:mod:`.validation`) for
``--validation enforce``.  Model verification (:mod:`.trust`).  Volumes
(:mod:`.volumes`): gadget layout → :class:`ucimage.image.DiskSpec` → disk,
written as ``.<vol>.img.partial`` and renamed.
"""
