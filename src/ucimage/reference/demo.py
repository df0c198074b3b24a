"""``make demo``: from Debian parts to a booted Ubuntu Core-style device, step by step.

Runs the real ``ucimage`` commands (shown as ``$ ucimage ...``) in a work
directory (default ``demo-out/``): build the reference snaps, start a
self-hosted store and push them, create a brand key and register the brand
with the store, sign the model, build ``pc.img`` from the store, inspect it,
boot it in QEMU and show what the device reports on its serial console, then
stop the store. Exit status 0 only if the device booted and its report
matches the model and ``seed.manifest``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ucimage.errors import UcimageError
from ucimage.reference import chain
from ucimage.reference.console import EXPECT, ConsoleParseError, parse_device_report
from ucimage.reference.publish import CHANNELS

#: console lines worth showing while the VM boots (the rest goes to the log)
_BOOT_PROGRESS = (
    "Welcome to GRUB",
    "ucimage-reference:",
    "Linux version",
    "UCIMAGE-REFERENCE",
    "ucimage boot:",
    "error:",
    "Kernel panic",
)


class Demo:
    def __init__(self, work: Path, uefi: bool) -> None:
        self.paths = chain.ChainPaths(work)
        self.uefi = uefi
        # the user's cache: a rebuild downloads nothing (cached assertions are only
        # used when they verify against this store's root)
        self.u = chain.Ucimage(echo=self.say)
        self.start = time.monotonic()
        self.step_no = 0
        self.steps = 11
        self.timings: list[tuple[str, float]] = []
        self._step_start = self.start

    def say(self, text: str) -> None:
        print(text, flush=True)

    def indent(self, line: str) -> None:
        print(f"    {line}", flush=True)

    def step(self, title: str) -> None:
        now = time.monotonic()
        if self.step_no:
            self.timings[-1] = (self.timings[-1][0], now - self._step_start)
        self._step_start = now
        self.step_no += 1
        self.timings.append((title, 0.0))
        print(
            f"\n==> [{self.step_no}/{self.steps}] {title}  (t+{now - self.start:.0f}s)", flush=True
        )

    def run(self) -> int:
        paths = self.paths
        paths.work.mkdir(parents=True, exist_ok=True)
        for stale in (paths.store, paths.keys, paths.image_dir):
            if stale.exists():
                shutil.rmtree(stale)
        self.say(f"ucimage demo: work directory {paths.work}")

        self.step("Create a self-hosted store (its root key signs what it serves)")
        self.u("store", "init", paths.store, "--authority-id", chain.STORE_AUTHORITY)
        for line in (paths.store / "root.assert").read_text().splitlines()[:3]:
            self.indent(line)

        self.step("Build the reference snaps from Debian packages (downloads are cached)")
        status = self.u.stream(
            "reference",
            "build",
            "--out",
            paths.snaps,
            "--trusted",
            paths.store / "root.assert",
            "--apt-update",
            on_line=self.indent,
            user_cache=True,
        )
        if status != 0:
            raise chain.ChainError("ucimage reference build failed (see above)")
        snaps = {p.name.split("_", 1)[0]: p for p in sorted(paths.snaps.glob("*.snap"))}

        self.step("Start the store on 127.0.0.1")
        with chain.store_server(self.u, paths.store) as url:
            self.indent(f"store listening on {url}")

            self.step("Push the snaps and release them (pc, pc-kernel also to track 18)")
            token = paths.store / "upload-token"
            for name in ("pc", "pc-kernel", "core18", "snapd"):
                out = self.u(
                    "store",
                    "push",
                    snaps[name],
                    "--release",
                    ",".join(CHANNELS[name]),
                    "--store",
                    url,
                    "--token-file",
                    token,
                )
                for line in out.splitlines():
                    self.indent(line)

            self.step("Create the brand key; the store's root signs the brand's account-key")
            chain.register_brand(self.u, paths, url)

            self.step("Sign the model assertion with the brand key")
            chain.sign_model(self.u, paths)
            for line in paths.model.read_text().split("\n\n", 1)[0].splitlines():
                self.indent(line)

            self.step(
                "Build pc.img from the model, fetching snaps and assertions (the brand's "
                "too) from the store"
            )
            status = self.u.stream(
                "snap",
                paths.model,
                "--store",
                url,
                "--trusted",
                paths.store / "root.assert",
                "-O",
                paths.image_dir,
                on_line=self.indent,
            )
            if status != 0:
                raise chain.ChainError("ucimage snap failed (see above)")

            self.step("Inspect the image file (no root, no mounts)")
            status = self.u.stream(
                "inspect",
                paths.image,
                "--trusted",
                paths.store / "root.assert",
                on_line=self.indent,
            )
            if status != 0:
                self.indent("(ucimage inspect reported problems)")

            self.step(f"Boot pc.img in QEMU ({'UEFI' if self.uefi else 'BIOS'}, serial console)")
            log = paths.work / "console.log"
            boot_args: list[str] = [
                "boot",
                str(paths.image),
                "--expect",
                EXPECT,
                "--timeout",
                "240",
                "--log",
                str(log),
            ]
            if self.uefi:
                boot_args.append("--uefi")

            def progress(line: str) -> None:
                if any(mark in line for mark in _BOOT_PROGRESS):
                    self.indent(line)

            boot_status = self.u.stream(*boot_args, on_line=progress)

            self.step("What the device printed on its serial console")
            ok = boot_status == 0 and self.show_device(log)

            self.step("Stop the store")
        self.step_no = self.steps  # the "stop" step is the last
        self.timings[-1] = (self.timings[-1][0], time.monotonic() - self._step_start)
        self.summary(ok)
        return 0 if ok else 1

    def show_device(self, log: Path) -> bool:
        try:
            report = parse_device_report(log.read_text())
        except (OSError, ConsoleParseError) as exc:
            self.say(f"the device did not report: {exc}")
            return False
        self.say("device$ snap list")
        for line in report.snap_list_text.splitlines():
            self.indent(line)
        self.say("device$ snap known model")
        for line in report.model_text.splitlines():
            self.indent(line)
        self.say("device$ snap model")
        for label, value in report.snap_model.items():
            self.indent(f"{label:<8}{value}")
        manifest = chain.read_seed_manifest(self.paths.seed_manifest)
        device = {row.name: row.rev for row in report.snaps}
        model_ok = report.model_text.strip() == self.paths.model.read_text().strip()
        print(flush=True)
        self.say(
            f"check: device snaps and revisions {'match' if device == manifest else 'DIFFER from'}"
            f" seed.manifest {manifest}"
        )
        self.say(
            f"check: device model {'is' if model_ok else 'is NOT'} the signed model.assert"
            f" ({report.model_id})"
        )
        return device == manifest and model_ok

    def summary(self, ok: bool) -> None:
        total = time.monotonic() - self.start
        print(flush=True)
        for title, took in self.timings:
            self.say(f"  {took:6.1f}s  {title}")
        verdict = "PASS" if ok else "FAIL"
        self.say(f"ucimage demo: {verdict} in {total:.0f}s; everything is in {self.paths.work}/")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ucimage.reference.demo",
        description="make demo: from Debian parts to a booted device, step by step",
    )
    parser.add_argument("--work", type=Path, default=Path("demo-out"), help="work directory")
    parser.add_argument("--uefi", action="store_true", help="boot with OVMF instead of BIOS")
    args = parser.parse_args(argv)
    demo = Demo(args.work.resolve(), args.uefi)
    try:
        return demo.run()
    except UcimageError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
