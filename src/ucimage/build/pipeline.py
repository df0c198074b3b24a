"""The ``ucimage snap`` build: options → plan → named steps → images.

:class:`ImageBuild` owns the workdir layout::

    <workdir>/ucimage-build.json   resume state (steps done, their results)
    <workdir>/model.assert         the model as given
    <workdir>/plan.json            the computed plan
    <workdir>/unpack/gadget/       the unpacked gadget snap (small)
    <workdir>/root/                UC16/18: the writable root (system-data/…);
                                   UC20+: the ubuntu-seed tree
    <workdir>/boot/                UC16/18 bootloader files (grub/, uboot/ …)
    <workdir>/volumes/<vol>/part<i>/  staged content of other filesystems

Snaps are never unpacked (only the gadget and the kernel assets a u-boot
device needs); seed files are hard links to the cache or local files where
the filesystem allows, so each snap byte is written once, into the image.
Images are written under a temporary name and renamed when complete, so no
file ever has the final image name unless the build succeeded.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ucimage.build.options import (
    BuildOptions,
    options_to_json,
    resumed_options,
    validate_options,
)
from ucimage.build.plan import BuildPlan, ModelSummary, PlannedSnap, output_dir_for, steps_for
from ucimage.build.runner import (
    BuildState,
    Progress,
    Step,
    interrupts_as_keyboard_interrupt,
    run_steps,
)
from ucimage.errors import CommandFailedError, UcimageError, UsageError
from ucimage.run import source_date_epoch
from ucimage.seed.bootloader import BootAssets
from ucimage.seed.manifest import (
    ValidationSetPin,
    seed_manifest,
    snaps_manifest,
    write_manifest,
)
from ucimage.seed.model import ModelInfo
from ucimage.seed.writer import (
    Customizations,
    SeedAssertion,
    SeedSnap,
    system_label,
    write_seed16,
    write_seed20,
)

log = logging.getLogger(__name__)
#: the umask a build runs under (see :meth:`ImageBuild.run`)
BUILD_UMASK = 0o022
#: the umask is the process's: builds overlapping in threads share one change of it,
#: made by the first to start and undone by the last to end (the caller's umask)
_umask_lock = threading.Lock()
_umask_users = 0
_umask_caller = BUILD_UMASK


def _enter_build_umask() -> int:
    """Set the build's umask; return the caller's."""
    global _umask_users, _umask_caller
    with _umask_lock:
        if _umask_users == 0:
            _umask_caller = os.umask(BUILD_UMASK)
        _umask_users += 1
        return _umask_caller


def _leave_build_umask() -> None:
    global _umask_users
    with _umask_lock:
        _umask_users -= 1
        if _umask_users == 0:
            os.umask(_umask_caller)


class BuildError(UcimageError):
    """The image cannot be built."""

    code = "build"


def _decode_model(data: bytes) -> Any:
    from ucimage.assertions.codec import decode

    return decode(data)


def load_model(path: Path) -> tuple[Any, ModelInfo]:
    """Decode a model assertion file into the assertion and its :class:`ModelInfo`."""
    data = path.read_bytes()
    assertion = _decode_model(data)
    if assertion.type != "model":
        raise BuildError(
            f"{path} holds a {assertion.type} assertion, not a model",
            hint="pass the model assertion (e.g. made with `ucimage assertion sign`)",
        )
    return assertion, ModelInfo.from_headers(assertion.headers)


def combine_channel(default: str | None, wanted: str | None) -> str | None:
    """snapd's rule: a risk-only channel keeps the default's track (18/stable + edge: 18/edge)."""
    if wanted is None:
        return default
    if default is None or "/" in wanted:
        return wanted
    parts = default.split("/")
    if len(parts) >= 2 and parts[0] not in ("stable", "candidate", "beta", "edge"):
        return f"{parts[0]}/{wanted}"
    return wanted


def _seed_assertion(assertion: Any) -> SeedAssertion:
    return SeedAssertion(
        type=assertion.type, primary_key=tuple(assertion.primary_key), text=assertion.encode()
    )


class ImageBuild:
    """One ``ucimage snap`` run."""

    def __init__(self, opts: BuildOptions, progress: Progress | None = None) -> None:
        if opts.resume and opts.workdir is not None and opts.model is None:
            # continue the saved build: its options, plus what may change between runs
            saved = BuildState.load(opts.workdir.absolute()).inputs.get("options")
            if saved:
                opts = resumed_options(saved, opts)
        validate_options(opts)
        self.opts = opts
        self.progress = progress or Progress(json_events=opts.json, verbosity=opts.verbosity)
        self._own_workdir = opts.workdir is None
        self.outdir = output_dir_for(opts).absolute()
        self.workdir = (opts.workdir or self._temp_workdir()).absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not opts.dry_run:
            # here, under the caller's umask: :meth:`run` makes what it creates 0755
            self.outdir.mkdir(parents=True, exist_ok=True)
        if opts.resume:
            self.state = BuildState.load(self.workdir)
        else:
            # a build's own temporary workdir is deleted when the build ends, except
            # when --until/--thru stop it: then it is kept, to be resumed from
            stops = bool(opts.until or opts.thru)
            self.state = BuildState(workdir=self.workdir, persist=not self._own_workdir or stops)
            self.state.inputs = {"model": str(opts.model.absolute()) if opts.model else None}
        self._model: tuple[Any, ModelInfo] | None = None
        self._deferred: list[list[str]] = []
        self._store_client: Any = None
        #: the unpacked gadget, loaded by :func:`ucimage.build.volumes.load_and_validate`
        self.gadget_info: Any = None
        #: warnings said once per build, though the volumes are laid out in two steps
        self.said: set[str] = set()
        #: the caller's umask, which the output files (images, .bmap, .zst) honour
        self.user_umask = BUILD_UMASK

    # ------------------------------------------------------------------ setup
    def _temp_workdir(self) -> Path:
        from ucimage.build.workdirs import make_workdir, sweep_dead_workdirs

        workdir = make_workdir(self.outdir)
        for dead in sweep_dead_workdirs(self.outdir, keep=workdir):
            self.progress.info(f"deleted {dead.name}, left by a build that was killed")
        return workdir

    def store_client(self, make: Callable[[], Any]) -> Any:
        """The build's one store client, made by *make* when first asked for and closed
        when :meth:`run` ends: every new client costs its transport set-up (and the CA
        bundle at its first TLS handshake), and model verification, resolve and fetch
        each asked for one."""
        if self._store_client is None:
            self._store_client = make()
        return self._store_client

    @property
    def model_file(self) -> Path:
        return self.workdir / "model.assert"

    @property
    def model(self) -> tuple[Any, ModelInfo]:
        if self._model is None:
            self._model = load_model(self.model_file)
        return self._model

    @property
    def info(self) -> ModelInfo:
        return self.model[1]

    def result(self, step: str) -> Any:
        try:
            return self.state.results[step]
        except KeyError:
            raise BuildError(
                f"step {step} has not run", hint="run the build without --resume"
            ) from None

    # ------------------------------------------------------------------ entry
    def steps(self) -> list[Step]:
        names = steps_for(self.opts)
        return [Step(name, getattr(self, f"step_{name}")) for name in names]

    def run(self) -> int:
        # what the build creates gets snapd's modes (0755 directories, 0644 files), not
        # ones that depend on the builder's umask: the image is the same for everyone
        self.user_umask = _enter_build_umask()
        try:
            return self._run()
        finally:
            _leave_build_umask()
            if self._store_client is not None:
                self._store_client.close()
                self._store_client = None

    def _run(self) -> int:
        try:
            with interrupts_as_keyboard_interrupt():
                self.state.inputs["options"] = options_to_json(self.opts)
                if not self._own_workdir:
                    # before anything is written there: a -w holding model.assert,
                    # unpack/ … and no state is refused as not a ucimage build's, and
                    # a failed first step or a --dry-run left those
                    try:
                        self.state.save()
                    except OSError as exc:
                        raise _os_error(exc) from exc
                if self.opts.dry_run:
                    try:
                        return self.dry_run()
                    except OSError as exc:
                        raise _os_error(exc) from exc
                self.progress.emit(
                    "build-start", workdir=str(self.workdir), output_dir=str(self.outdir)
                )
                try:
                    with _output_lock(self.outdir, self.progress):
                        finished = run_steps(
                            self.steps(),
                            self.state,
                            self.progress,
                            until=self.opts.until,
                            thru=self.opts.thru,
                        )
                except OSError as exc:
                    raise _os_error(exc) from exc
                except CommandFailedError as exc:
                    # Ctrl-C reaches the whole process group: a tool killed by SIGINT
                    # means the build was interrupted, not that the tool failed
                    if exc.returncode == -signal.SIGINT:
                        raise KeyboardInterrupt from exc
                    raise
                if finished:
                    self.progress.emit(
                        "build-done",
                        outputs=self.state.results.get("outputs", []),
                        timings=self.state.timings,
                    )
            if finished and self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            return 0
        except UcimageError as exc:
            self.progress.emit("error", message=exc.message, hint=exc.hint, code=exc.code)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        except KeyboardInterrupt:
            self.progress.emit("error", message="interrupted", code="interrupted")
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        except BaseException:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def dry_run(self) -> int:
        """Verify the model and print the plan (no snap is downloaded)."""
        self.step_verify_model()
        snaps = self.requested_snaps()
        plan = self.make_plan(snaps)
        gadget = [s for s in snaps if s.type == "gadget" and s.source == "local" and s.path]
        if gadget and not self.opts.seed_only:
            plan = replace(plan, volumes=tuple(self._dry_run_volumes(Path(str(gadget[0].path)))))
        print(json.dumps(plan.to_json(), indent=2, sort_keys=True))
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return 0

    def _dry_run_volumes(self, gadget_snap: Path) -> list[dict[str, Any]]:
        from ucimage.gadget import ModelContext, lay_out_volume, load_gadget
        from ucimage.snaps import SnapFile

        dest = self.workdir / "unpack" / "gadget"
        SnapFile(gadget_snap).extract(dest)  # small; image content sizes are checked
        gadget = load_gadget(dest, model=ModelContext(has_modes=self.info.uc20))
        self.opts.image_size.check_volumes(list(gadget.volumes))
        out = []
        for index, (name, volume) in enumerate(gadget.volumes.items()):
            if not volume.produces_image:
                continue
            layout = lay_out_volume(
                volume,
                sector_size=self.opts.sector_size,
                image_size=self.opts.image_size.for_volume(name, index),
            )
            out.append(layout.to_json())
        return out

    # ------------------------------------------------------------------ plan
    def make_plan(self, snaps: Sequence[PlannedSnap]) -> BuildPlan:
        info = self.info
        verified = bool(self.state.results.get("verify_model", {}).get("verified"))
        label = self.label() if info.uc20 else None
        outputs = ["seed.manifest"] + ([] if info.uc20 else ["snaps.manifest"])
        return BuildPlan(
            model=ModelSummary(
                brand_id=info.brand_id,
                model=info.model,
                series=info.series,
                architecture=info.architecture,
                base=info.base,
                grade=info.grade,
                verified=verified,
            ),
            kind="uc20" if info.uc20 else "uc16",
            label=label,
            snaps=tuple(snaps),
            steps=steps_for(self.opts),
            output_dir=str(self.outdir),
            workdir=None if self._own_workdir else str(self.workdir),
            seed_only=self.opts.seed_only,
            image_seed=self.opts.image_seed,
            sector_size=self.opts.sector_size,
            outputs=tuple(outputs),
        )

    def label(self) -> str:
        saved = self.state.results.get("compute_plan", {}).get("label")
        if saved:
            return str(saved)
        return system_label(source_date_epoch())

    def check_customizations(self, info: ModelInfo) -> None:
        opts = self.opts
        if info.uc20:
            wanted = []
            if opts.cloud_init:
                wanted.append("cloud-init user-data")
            if opts.disable_console_conf:
                wanted.append("console-conf disable")
            if wanted:
                raise UsageError(
                    "cannot support with UC20+ model requested customizations: "
                    + ", ".join(wanted),
                    hint="--cloud-init and --disable-console-conf are for UC16/18 models",
                )
        elif opts.factory_image:
            raise UsageError(
                "cannot support with UC16/18 model requested customizations: boot flags (factory)",
                hint="--factory-image is for UC20+ models",
            )
        if info.grade in ("signed", "secured"):
            # snapd's seedwriter (policy20): no -c, no channel and no extra snap by name;
            # a local file must be one of the model's snaps asserted by the store, which
            # the fetch step checks (before any download)
            wanted = [
                req.name
                for req in opts.snaps
                if req.name and (req.channel or info.find(req.name) is None)
            ]
            if opts.channel or wanted:
                raise UsageError(
                    "cannot override channels, add devmode snaps, local snaps, or extra snaps "
                    "with a model of grade higher than dangerous",
                    hint=f"the model is of grade {info.grade}: only models of grade dangerous "
                    "accept -c/--channel, --snap NAME=CHANNEL and extra snaps",
                )

    def requested_snaps(self) -> list[PlannedSnap]:
        """The snaps to seed: the model's, overridden/extended by --snap (no network)."""
        from ucimage.snaps import SnapFile

        info = self.info
        opts = self.opts
        local: dict[str, tuple[Path, str]] = {}
        for req in opts.snaps:
            if req.path is not None:
                snap_info = SnapFile(req.path).info
                if snap_info.name in local:
                    raise UsageError(f"snap {snap_info.name!r} given twice as a local file")
                local[snap_info.name] = (req.path.absolute(), snap_info.type)
        # NAME=CHANNEL of a snap also given as a file is that file's channel (snapd's
        # seedwriter merges them; an unasserted snap's seed entry shows no channel)
        merged = {req.name: req.channel for req in opts.snaps if req.name and req.name in local}
        store_extra = {
            req.name: req.channel for req in opts.snaps if req.name and req.name not in local
        }
        planned: list[PlannedSnap] = []
        for msnap in info.snaps:
            if (
                info.uc20
                and msnap.presence == "optional"
                and msnap.name not in local
                and (msnap.name not in store_extra)
            ):
                continue
            if msnap.name in local:
                path, _ = local.pop(msnap.name)
                planned.append(
                    PlannedSnap(
                        name=msnap.name,
                        type=msnap.type,
                        source="local",
                        # the seed shows it only if the store knows the file (asserted)
                        channel=combine_channel(
                            msnap.default_channel, merged.get(msnap.name) or opts.channel
                        ),
                        snap_id=msnap.snap_id,
                        path=str(path),
                    )
                )
                continue
            wanted = store_extra.pop(msnap.name, None)
            channel = combine_channel(msnap.default_channel, wanted or opts.channel)
            planned.append(
                PlannedSnap(
                    name=msnap.name,
                    type=msnap.type,
                    source="store",
                    channel=channel,
                    revision=opts.revision_of(msnap.name),
                    snap_id=msnap.snap_id,
                )
            )
        for name, (path, snap_type) in local.items():
            planned.append(
                PlannedSnap(
                    name=name,
                    type=snap_type,
                    source="local",
                    channel=merged.get(name) or opts.channel or "stable",
                    path=str(path),
                    in_model=False,
                )
            )
        for name, channel in store_extra.items():
            assert name is not None
            planned.append(
                PlannedSnap(
                    name=name,
                    type="app",
                    source="store",
                    channel=combine_channel(
                        "stable" if not info.uc20 else "latest/stable", channel or opts.channel
                    ),
                    revision=opts.revision_of(name),
                    in_model=False,
                )
            )
        return planned

    # ------------------------------------------------------------------ steps
    def step_verify_model(self) -> None:
        opts = self.opts
        assert opts.model is not None
        data = opts.model.read_bytes()
        tmp = self.model_file.with_suffix(".partial")
        tmp.write_bytes(data)
        os.replace(tmp, self.model_file)
        self._model = None
        assertion, info = self.model
        self.check_customizations(info)
        verified = self.verify_model_chain(assertion)
        self.state.results["verify_model"] = {"verified": verified, "model": info.model}

    def verify_model_chain(self, assertion: Any) -> bool:
        """Check the model's signature chain against the trusted roots (+ --trusted);
        its brand's account-key and account come from --assertion files or the store."""
        from ucimage.build import trust

        # the --snap files are read first: what is wrong with them is not the model's fault
        requested = self.requested_snaps()
        try:
            chain = trust.model_chain(self, assertion, requested)
            saved = []
            adir = self.workdir / "assertions"
            adir.mkdir(exist_ok=True)
            for a in chain:
                if a.type == "model":
                    continue
                sa = _seed_assertion(a)
                path = adir / sa.file_name
                path.write_bytes(sa.text)
                saved.append(
                    {"type": sa.type, "primary_key": list(sa.primary_key), "file": str(path)}
                )
            self.state.results["model_assertions"] = saved
            return True
        except UcimageError as exc:
            if not self.opts.allow_unverified:
                raise BuildError(
                    f"cannot verify the model assertion: {exc.message}",
                    hint=exc.hint
                    or "add the brand's account and account-key to the store (ucimage store "
                    "add-assertion) or pass them with --assertion, trust the root with "
                    "--trusted, or build anyway with --allow-unverified",
                ) from exc
            self.progress.warning(f"model is not verified ({exc.message}); building anyway")
            return False

    def step_resolve_snaps(self) -> None:
        from ucimage.build import sources

        planned = self.requested_snaps()
        if self.info.validation_sets and self.opts.validation is None:
            self.progress.warning(
                "proceeding to download snaps ignoring validations, this default will change "
                "in the future. For now use --validation=enforce for validations to be taken "
                "into account, pass instead --validation=ignore to preserve current behavior "
                "going forward"
            )
        for name, rev in self.opts.revisions:
            match = [p for p in planned if p.name == name]
            if not match:
                raise UsageError(
                    f"--revision {name}:{rev} names a snap the image does not contain",
                    hint="add it with --snap or fix the name",
                )
            if match[0].source == "local":
                raise UsageError(f"--revision {name}:{rev} cannot apply to a local snap file")
            self.progress.warning(
                f"revision {rev} for snap {name} may not be the latest available version!"
            )
        resolved = sources.resolve(self, planned)
        self.state.results["resolve_snaps"] = {"snaps": [s.to_json() for s in resolved]}

    def planned(self) -> list[PlannedSnap]:
        return [PlannedSnap.from_json(s) for s in self.result("resolve_snaps")["snaps"]]

    def step_fetch_snaps(self) -> None:
        from ucimage.build import sources

        fetched = sources.fetch(self, self.planned())
        self.state.results["fetch_snaps"] = {"snaps": fetched}

    def fetched(self) -> list[dict[str, Any]]:
        return list(self.result("fetch_snaps")["snaps"])

    def gadget_dir(self) -> Path:
        return self.workdir / "unpack" / "gadget"

    def snap_path(self, snap_type: str) -> Path:
        for snap in self.fetched():
            if snap["type"] == snap_type:
                return Path(snap["path"])
        raise BuildError(f"no {snap_type} snap among the snaps to seed")

    def step_load_gadget(self) -> None:
        from ucimage.snaps import SnapFile

        dest = self.gadget_dir()
        self.gadget_info = None
        if dest.exists():
            shutil.rmtree(dest)
        # unsquashfs runs while the gadget modules load (~15 ms of imports)
        with ThreadPoolExecutor(1, thread_name_prefix="unsquashfs") as pool:
            extracting = pool.submit(SnapFile(self.snap_path("gadget")).extract, dest)
            import ucimage.gadget  # noqa: F401
        extracting.result()
        gadget_yaml = dest / "meta" / "gadget.yaml"
        if not gadget_yaml.is_file():
            raise BuildError("the gadget snap has no meta/gadget.yaml")
        gadget_base = None
        snap_yaml = dest / "meta" / "snap.yaml"
        from ucimage.snaps import parse_snap_yaml

        gadget_base = parse_snap_yaml(snap_yaml.read_text()).base
        info = self.info
        if info.base and gadget_base and gadget_base != info.base:
            raise BuildError(
                f"cannot use gadget snap because its base {gadget_base!r} is different "
                f"from model base {info.base!r}"
            )
        from ucimage.build import volumes

        volumes.load_and_validate(self)
        self.state.results["load_gadget"] = {"gadget_dir": str(dest)}

    def step_compute_plan(self) -> None:
        plan = self.make_plan(self.planned())
        (self.workdir / "plan.json").write_text(
            json.dumps(plan.to_json(), indent=2, sort_keys=True)
        )
        self.state.results["compute_plan"] = {"label": plan.label, "kind": plan.kind}
        self.progress.debug(json.dumps(plan.to_json(), sort_keys=True))

    def kernel_extractor(self) -> Any:
        from ucimage.snaps import SnapFile

        kernel = SnapFile(self.snap_path("kernel"))

        def extract(members: Sequence[str], dest: Path) -> None:
            present = set(kernel.list())
            wanted = [m for m in members if m in present]
            if not wanted:
                raise BuildError(f"the kernel snap has none of {', '.join(members)}")
            kernel.extract(dest, wanted)

        return extract

    def seed_snaps(self) -> list[SeedSnap]:
        out = []
        for snap in self.fetched():
            out.append(
                SeedSnap(
                    name=snap["name"],
                    type=snap["type"],
                    path=Path(snap["path"]),
                    version=snap["version"],
                    revision=snap.get("revision"),
                    snap_id=snap.get("snap_id"),
                    channel=snap.get("channel"),
                    assertions=tuple(
                        SeedAssertion(
                            a["type"], tuple(a["primary_key"]), Path(a["file"]).read_bytes()
                        )
                        for a in snap.get("assertions", [])
                    ),
                )
            )
        return out

    def model_assertions(self) -> list[SeedAssertion]:
        saved = self.state.results.get("model_assertions", [])
        return [
            SeedAssertion(a["type"], tuple(a["primary_key"]), Path(a["file"]).read_bytes())
            for a in saved
        ]

    def gadget_system_defaults(self) -> dict[str, Any]:
        from ucimage.build import volumes

        defaults = volumes.load_and_validate(self).defaults.get("system")
        return dict(defaults) if isinstance(defaults, dict) else {}

    def _placer(self) -> Any:
        """Hard-link snaps into the seed tree; when that is impossible (another
        filesystem) defer them: the disk writer reads them from where they are,
        so their bytes are still written once, into the image."""
        self._deferred = []
        if self.opts.seed_only:
            return None

        def place(src: Path, dst: Path) -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
                    raise
                rel = dst.relative_to(self.root_dir())
                self._deferred.append([str(src), str(rel)])

        return place

    def root_dir(self) -> Path:
        return self.workdir / "root"

    def boot_dir(self) -> Path:
        return self.workdir / "boot"

    def step_write_seed(self) -> None:
        info = self.info
        for stale in (self.root_dir(), self.boot_dir()):
            if stale.exists():
                shutil.rmtree(stale)
        assets = BootAssets(gadget_dir=self.gadget_dir(), extract_kernel=self.kernel_extractor())
        custom = Customizations(
            cloud_init_user_data=self.opts.cloud_init,
            disable_console_conf=self.opts.disable_console_conf,
            boot_flags=("factory",) if self.opts.factory_image else (),
            system_defaults=self.gadget_system_defaults(),
        )
        model_text = self.model_file.read_bytes()
        snaps = self.seed_snaps()
        if info.uc20:
            seed_root = self.root_dir()
            seed_root.mkdir(parents=True)
            from ucimage.build import volumes

            # the gadget's system-seed content lands in the seed tree first
            volumes.stage_seed_content(self, seed_root)
            result = write_seed20(
                seed_root,
                info,
                model_text,
                self.model_assertions(),
                snaps,
                assets,
                label=self.label(),
                custom=custom,
                place=self._placer(),
            )
            installed: dict[str, str] = {}
            manifest_revs = dict(result.revisions)
            if self.opts.disk_info:
                shutil.copyfile(self.opts.disk_info, _mkparent(seed_root / ".disk" / "info"))
        else:
            system_data = self.root_dir() / "system-data"
            system_data.mkdir(parents=True)
            result = write_seed16(
                system_data,
                self.boot_dir(),
                info,
                model_text,
                self.model_assertions(),
                snaps,
                assets,
                custom,
                place=self._placer(),
            )
            (system_data / "boot").mkdir(exist_ok=True)
            installed = dict(result.boot_snaps)
            manifest_revs = dict(result.revisions)
            if self.opts.disk_info:
                shutil.copyfile(self.opts.disk_info, _mkparent(self.root_dir() / ".disk" / "info"))
        self.state.results["write_seed"] = {
            "deferred": self._deferred,
            "revisions": manifest_revs,
            "installed": installed,
            "files": result.files,
            "label": result.label,
            "bootloader": assets.bootloader(),
        }
        if self.opts.seed_only:
            self._export_seed()

    def _export_seed(self) -> None:
        """--seed-only: the seed tree in the output dir, laid out like `snap prepare-image`."""
        kind = "system-seed" if self.info.uc20 else "image"
        dest = self.outdir / kind
        if dest.exists():
            raise BuildError(f"{dest} already exists", hint="remove it or pick another -O")
        tmp = self.outdir / f".{kind}.partial"
        if tmp.exists():
            shutil.rmtree(tmp)
        if self.info.uc20:
            shutil.copytree(self.root_dir(), tmp, symlinks=True, copy_function=_link_or_copy)
        else:
            shutil.copytree(
                self.root_dir() / "system-data", tmp, symlinks=True, copy_function=_link_or_copy
            )
            shutil.rmtree(tmp / "boot", ignore_errors=True)
            if self.boot_dir().exists():
                shutil.copytree(self.boot_dir(), tmp / "boot", copy_function=_link_or_copy)
        os.replace(tmp, dest)
        self.state.results.setdefault("outputs", []).append(str(dest))

    def step_populate_volumes(self) -> None:
        from ucimage.build import volumes

        self.state.results["populate_volumes"] = volumes.populate(self)

    def step_build_volumes(self) -> None:
        from ucimage.build import volumes

        images = volumes.build(self)
        self.state.results["build_volumes"] = {"images": images}
        outputs = self.state.results.setdefault("outputs", [])
        outputs.extend(images)

    def step_write_manifests(self) -> None:
        seeded = self.result("write_seed")
        info = self.info
        self.outdir.mkdir(parents=True, exist_ok=True)
        written = []
        # snaps without a revision (UC20 local snaps) are not in the manifest, nor
        # those whose revision a validation set fixes
        vsets = self.state.results.get("validation_sets", [])
        governed = {name for vs in vsets for name in vs.get("governed", [])}
        revisions = {k: v for k, v in seeded["revisions"].items() if v and k not in governed}
        pins = [
            ValidationSetPin(vs["account"], vs["name"], vs["sequence"], vs["pinned"])
            for vs in vsets
        ]
        if write_manifest(self.outdir / "seed.manifest", seed_manifest(revisions, pins)):
            written.append(str(self.outdir / "seed.manifest"))
        if not info.uc20 and write_manifest(
            self.outdir / "snaps.manifest", snaps_manifest(seeded["installed"])
        ):
            written.append(str(self.outdir / "snaps.manifest"))
        self.state.results.setdefault("outputs", []).extend(written)


@contextmanager
def _output_lock(outdir: Path, progress: Progress) -> Iterator[None]:
    """One build at a time writes into *outdir*: two at once wrote into the same
    temporary image (a fixed name, so a killed build's is cleaned up by the next)
    and one could end "successful" with the other's half-written image."""
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(outdir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # a directory one may write to but not read (mode 0300)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.warning(f"waiting for another build writing into {outdir} to end")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks (some network ones): as before, unlocked
        yield  # the lock ends when the descriptor is closed
    finally:
        os.close(fd)


def _os_error(exc: OSError) -> BuildError:
    """A file-system failure as a one-line error with a hint."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return BuildError(
            f"no space left on the device{where}",
            hint="free some space or choose another -O/--output-dir or -w/--workdir",
        )
    return BuildError(f"{exc.strerror or exc}{where}")


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
