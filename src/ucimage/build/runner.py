"""The step runner: named, logged, timed steps resumable from the workdir.

A build is a list of :class:`Step` run in order.  After each step the
:class:`BuildState` (steps done and their JSON results) is saved atomically
to ``<workdir>/ucimage-build.json``, so a build stopped by ``--until``/``--thru``,
an error, SIGINT or even SIGKILL between steps can continue with ``--resume``.

:class:`Progress` reports what happens: ``[N] step`` lines like ubuntu-image,
or, with ``--json``, one JSON object per line on stdout (events ``build-start``,
``step-start``, ``step-done``, ``step-skipped``, ``message``, ``build-done``,
``build-stopped``, ``error``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ucimage.errors import UcimageError

STATE_FILE = "ucimage-build.json"
STATE_VERSION = 1


class BuildStateError(UcimageError):
    code = "build-state"


class Progress:
    """Prints progress for humans or as JSON lines."""

    def __init__(
        self, *, json_events: bool = False, verbosity: int = 0, stream: TextIO | None = None
    ) -> None:
        self.json_events = json_events
        self.verbosity = verbosity
        self.stream = stream
        self.events: list[dict[str, Any]] = []

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self.events.append(record)
        if self.json_events:
            print(json.dumps(record, sort_keys=True, default=str), file=self._out(), flush=True)
            return
        if self.verbosity < 0 and event not in ("error",):
            return
        text = self._human(event, fields)
        if text is not None:
            print(text, file=self._out(), flush=True)

    def _human(self, event: str, f: dict[str, Any]) -> str | None:
        if event == "step-start":
            return f"[{f['index']}] {f['step']}"
        if event == "step-done" and self.verbosity >= 1:
            return f"    {f['step']} took {f['seconds']:.2f}s"
        if event == "step-skipped" and self.verbosity >= 1:
            return f"    {f['step']} already done (resumed)"
        if event == "message":
            level = f.get("level", "info")
            if level == "warning":
                return f"WARNING: {f['text']}"
            if level == "debug" and self.verbosity < 2:
                return None
            if level == "info" and self.verbosity < 1:
                return None
            return str(f["text"])
        if event == "build-done":
            return "Build successful"
        if event == "build-stopped":
            return f"Stopped after {f['after']} (continue with --resume)"
        return None

    def info(self, text: str) -> None:
        self.emit("message", level="info", text=text)

    def warning(self, text: str) -> None:
        self.emit("message", level="warning", text=text)

    def debug(self, text: str) -> None:
        self.emit("message", level="debug", text=text)


@dataclass
class BuildState:
    """What is persisted between runs in the workdir."""

    workdir: Path
    done: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: False for a build's own temporary workdir that no --until/--thru stops: it is
    #: deleted whenever the build ends, so a state file there could never be resumed from
    persist: bool = True

    @property
    def path(self) -> Path:
        return self.workdir / STATE_FILE

    def save(self) -> None:
        if not self.persist:
            return
        data = {
            "version": STATE_VERSION,
            "done": self.done,
            "results": self.results,
            "inputs": self.inputs,
            "timings": self.timings,
        }
        tmp = self.path.with_name(STATE_FILE + ".partial")
        # write + rename: a SIGKILL leaves the old or the new state, never half of
        # one (no fsync: surviving power loss is not the point, speed is)
        with open(tmp, "w") as fh:
            # dumps + one write: json.dump's many small writes took twice as long
            fh.write(json.dumps(data, indent=1, sort_keys=True, default=str))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, workdir: Path) -> BuildState:
        path = workdir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise BuildStateError(
                f"nothing to resume: {path} does not exist",
                hint="start the build with -w/--workdir and without --resume first",
            ) from None
        except (OSError, ValueError) as exc:
            raise BuildStateError(f"cannot read build state {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise BuildStateError(f"{path} was written by an incompatible ucimage")
        return cls(
            workdir=workdir,
            done=list(data.get("done", [])),
            results=dict(data.get("results", {})),
            inputs=dict(data.get("inputs", {})),
            timings=dict(data.get("timings", {})),
        )


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[], None]


class StepsStopped(Exception):
    """Internal: --until/--thru reached."""


def run_steps(
    steps: Sequence[Step],
    state: BuildState,
    progress: Progress,
    *,
    until: str | None = None,
    thru: str | None = None,
) -> bool:
    """Run the steps not yet done; returns False when stopped by --until/--thru."""
    total = len(steps)
    for index, step in enumerate(steps):
        if until is not None and step.name == until:
            progress.emit("build-stopped", after=steps[index - 1].name if index else "start")
            return False
        if step.name in state.done:
            progress.emit("step-skipped", step=step.name, index=index, total=total)
        else:
            progress.emit("step-start", step=step.name, index=index, total=total)
            started = time.perf_counter()
            step.run()
            seconds = time.perf_counter() - started
            state.done.append(step.name)
            state.timings[step.name] = round(seconds, 4)
            state.save()
            progress.emit("step-done", step=step.name, index=index, seconds=round(seconds, 4))
        if thru is not None and step.name == thru and index + 1 < total:
            progress.emit("build-stopped", after=step.name)
            return False
    return True


@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP behave like SIGINT, so cleanup handlers run for all three."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            saved[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread
            pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
