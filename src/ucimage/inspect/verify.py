"""``inspect --verify``: check a seed the way a device's first boot would.

* every assertion in the seed is checked against the trust database (the
  built-in trusted roots plus any ``--trusted`` files): signature, signing key
  validity, cross-consistency;
* every asserted snap is cross-checked with its snap-revision: SHA3-384 digest
  and size of the file, snap-id, and that its snap-declaration names it;
* the model's required snaps must all be in the seed;
* the boot environment must be intact and name the seeded kernel and base
  (UC16/18) or the seed's recovery system and kernel (UC20+).

Every check yields a :class:`Check`; the report is ``ok`` only if none failed.
Unasserted (local) snaps cannot be verified and are reported as ``skipped``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ucimage.assertions import Assertion
from ucimage.errors import UcimageError
from ucimage.inspect.bootenv import BootEnv
from ucimage.inspect.seed import Seed, SeedSnap, model_snap_names

#: check(assertion) raises a UcimageError when the assertion does not verify
AssertionChecker = Callable[[Assertion], None]


@dataclass(frozen=True)
class Check:
    kind: str  # "assertion", "snap", "model"
    subject: str
    status: str  # "ok", "failed", "skipped"
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class VerifyReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.failed)


def check_snap(snap: SeedSnap) -> Check:
    subject = f"{snap.name} ({snap.file})"
    if snap.unasserted:
        return Check("snap", subject, "skipped", "unasserted snap: nothing to verify it against")
    rev = snap.revision_assertion
    if rev is None:
        return Check("snap", subject, "failed", "no snap-revision assertion for it in the seed")
    if not snap.local_path.is_file():
        return Check("snap", subject, "failed", "the snap file is missing")
    want_digest = str(rev.header("snap-sha3-384"))
    want_size = str(rev.header("snap-size"))
    revno = str(rev.header("snap-revision"))
    if str(snap.size) != want_size:
        return Check(
            "snap",
            subject,
            "failed",
            f"size {snap.size} does not match snap-revision {revno} (snap-size {want_size})",
        )
    if snap.sha3_384 != want_digest:
        return Check(
            "snap",
            subject,
            "failed",
            f"sha3-384 digest {snap.sha3_384} does not match snap-revision {revno} "
            f"({want_digest}): the file was changed",
        )
    decl = snap.declaration
    snap_id = str(rev.header("snap-id"))
    if decl is None:
        return Check("snap", subject, "failed", f"no snap-declaration for snap-id {snap_id}")
    if str(decl.header("snap-id")) != snap_id:
        return Check("snap", subject, "failed", "snap-declaration and snap-revision disagree")
    if str(decl.header("snap-name")) != snap.name:
        return Check(
            "snap",
            subject,
            "failed",
            f"snap-declaration for {snap_id} names {decl.header('snap-name')!r}, not {snap.name!r}",
        )
    if snap.snap_id and snap.snap_id != snap_id:
        return Check(
            "snap", subject, "failed", f"seed says snap-id {snap.snap_id}, assertions {snap_id}"
        )
    return Check(
        "snap", subject, "ok", f"revision {revno}, {snap.size} bytes, sha3-384 {want_digest}"
    )


def verify_seed(seed: Seed, check_assertion: AssertionChecker) -> VerifyReport:
    checks: list[Check] = []
    for where, a in seed.assertions:
        subject = f"{a.type} {'/'.join(a.primary_key)} ({where})"
        try:
            check_assertion(a)
        except UcimageError as exc:
            checks.append(Check("assertion", subject, "failed", exc.message))
        else:
            checks.append(Check("assertion", subject, "ok"))
    checks.extend(check_snap(s) for s in seed.snaps)
    names = {s.name for s in seed.snaps}
    for name, _, presence in model_snap_names(seed.model):
        if presence == "optional" and name not in names:
            continue
        if name in names:
            checks.append(Check("model", name, "ok", "required by the model and seeded"))
        else:
            checks.append(Check("model", name, "failed", "required by the model, not in the seed"))
    return VerifyReport(tuple(checks))


def check_bootenvs(
    seed: Seed,
    envs: Sequence[tuple[str, BootEnv]],
    *,
    raw: Sequence[tuple[str, BootEnv]] = (),
) -> list[Check]:
    """The boot environment names the seeded kernel and base (or recovery system).

    *envs* are ``(where, env)`` pairs.  UC16/18: ``snap_kernel``/``snap_core``
    must be ``<name>_<rev>.snap`` of the seeded kernel and base.  UC20+:
    ``snapd_recovery_system`` must be the seed's system and
    ``snapd_recovery_kernel`` the seeded kernel's file.

    *raw* are the lk envs read from bare partitions.  Each must be intact.  On
    UC16/18 they are the env the device boots with (ubuntu-image writes snapd's
    prepared ``snapbootsel.bin`` there), so their values are checked like the
    files'.  On UC20+ snapd prepares the recovery env as the file
    ``boot/lk/snaprecoverysel.bin`` on ubuntu-seed (checked above), to be flashed
    into the recovery select partitions (``ucimage snap`` does): a raw recovery
    env must name the seed's system and assign it a boot image partition in its
    recovery matrix (where the lk bootloader finds the recovery kernel).  The run
    envs are filled at install: only their integrity is checked.
    """
    if seed.layout == "uc16":
        return _check_bootenv_values(seed, [*envs, *raw])
    checks = _check_bootenv_values(seed, envs)
    for where, env in raw:
        if not env.valid:
            checks.append(Check("bootenv", where, "failed", "; ".join(env.problems)))
            continue
        checks.append(Check("bootenv", where, "ok", "intact lk env"))
        got = env.variables.get("snapd_recovery_system")
        if got is None:
            continue  # a run env
        label = seed.system_label
        subject = f"{where} snapd_recovery_system"
        if got == label:
            checks.append(Check("bootenv", subject, "ok", got))
        else:
            checks.append(
                Check(
                    "bootenv",
                    subject,
                    "failed",
                    f"is {got!r}, the seed has {label!r}: the lk recovery bootloader "
                    "reads this partition (flash the seed's boot/lk/snaprecoverysel.bin)",
                )
            )
        # "boot_ra=20240101 boot_rb=": the partition labels with their system
        rows = env.details.get("boot partitions", "").split(" ")
        parts = [row[: -len(label) - 1] for row in rows if label and row.endswith("=" + label)]
        subject = f"{where} recovery boot image partition"
        if parts:
            checks.append(Check("bootenv", subject, "ok", ", ".join(parts)))
        else:
            checks.append(
                Check(
                    "bootenv",
                    subject,
                    "failed",
                    f"no boot image partition is assigned to {label!r} in the recovery "
                    "matrix: the lk bootloader cannot find the recovery kernel",
                )
            )
    return checks


def _check_bootenv_values(seed: Seed, envs: Sequence[tuple[str, BootEnv]]) -> list[Check]:
    checks: list[Check] = []
    by_type: dict[str, SeedSnap] = {}
    for snap in seed.snaps:
        by_type.setdefault("base" if snap.type in ("base", "os") else snap.type, snap)
    expected: dict[str, str] = {}
    #: variables some bootloaders do not use (u-boot/piboot keep the kernel elsewhere)
    optional: set[str] = set()
    if seed.layout == "uc16":
        for var, kind in (("snap_kernel", "kernel"), ("snap_core", "base")):
            if kind in by_type:
                expected[var] = f"{by_type[kind].name}_{by_type[kind].revision}.snap"
    else:
        expected["snapd_recovery_system"] = seed.system_label
        if "kernel" in by_type:
            expected["snapd_recovery_kernel"] = by_type["kernel"].file
            optional.add("snapd_recovery_kernel")
    seen: set[str] = set()
    for where, env in envs:
        if not env.valid:
            checks.append(Check("bootenv", where, "failed", "; ".join(env.problems)))
            continue
        for var, want in expected.items():
            if var not in env.variables:
                continue
            seen.add(var)
            got = env.variables[var]
            if got == want:
                checks.append(Check("bootenv", f"{where} {var}", "ok", got))
            else:
                checks.append(
                    Check(
                        "bootenv", f"{where} {var}", "failed", f"is {got!r}, the seed has {want!r}"
                    )
                )
    for var in expected:
        if var not in seen and var not in optional and envs:
            checks.append(Check("bootenv", var, "failed", "no boot environment sets it"))
    return checks


def database_checker(trusted: Sequence[Path], seed: Seed) -> AssertionChecker:
    """A checker backed by :class:`ucimage.assertions.Database`.

    The database trusts the built-in roots plus the ``--trusted`` files; the
    seed's own assertions are added (unchecked) so that chains resolve, and
    each one is then checked on its own.
    """
    from ucimage.inspect import _database

    return _database.checker(trusted, [a for _, a in seed.assertions])
