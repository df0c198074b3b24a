"""The step runner: order, --until/--thru, state file, JSON events."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ucimage.build.runner import BuildState, BuildStateError, Progress, Step, run_steps


def make_steps(log: list[str]) -> list[Step]:
    return [Step(n, lambda n=n: log.append(n)) for n in ("a", "b", "c")]  # type: ignore[misc]


def test_runs_in_order_and_saves_state(tmp_path: Path) -> None:
    log: list[str] = []
    stream = io.StringIO()
    state = BuildState(workdir=tmp_path)
    assert run_steps(make_steps(log), state, Progress(json_events=True, stream=stream))
    assert log == ["a", "b", "c"]
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["step-start", "step-done"] * 3
    assert BuildState.load(tmp_path).done == ["a", "b", "c"]


def test_until_thru_and_resume(tmp_path: Path) -> None:
    log: list[str] = []
    state = BuildState(workdir=tmp_path)
    assert not run_steps(make_steps(log), state, Progress(stream=io.StringIO()), until="b")
    assert log == ["a"]
    state = BuildState.load(tmp_path)
    assert not run_steps(make_steps(log), state, Progress(stream=io.StringIO()), thru="b")
    assert log == ["a", "b"]
    state = BuildState.load(tmp_path)
    assert run_steps(make_steps(log), state, Progress(stream=io.StringIO()))
    assert log == ["a", "b", "c"]


def test_failed_step_is_not_recorded(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("x")

    state = BuildState(workdir=tmp_path)
    with pytest.raises(RuntimeError):
        run_steps([Step("a", lambda: None), Step("b", boom)], state, Progress(stream=io.StringIO()))
    assert BuildState.load(tmp_path).done == ["a"]


def test_bad_state(tmp_path: Path) -> None:
    with pytest.raises(BuildStateError, match="nothing to resume"):
        BuildState.load(tmp_path)
    (tmp_path / "ucimage-build.json").write_text("{")
    with pytest.raises(BuildStateError):
        BuildState.load(tmp_path)
    (tmp_path / "ucimage-build.json").write_text('{"version": 99}')
    with pytest.raises(BuildStateError, match="incompatible"):
        BuildState.load(tmp_path)


def test_human_output() -> None:
    stream = io.StringIO()
    p = Progress(stream=stream)
    p.emit("step-start", step="write_seed", index=5, total=9)
    p.warning("careful")
    p.info("hidden")
    p.emit("build-done")
    assert stream.getvalue() == "[5] write_seed\nWARNING: careful\nBuild successful\n"


def test_state_of_a_temporary_workdir_is_not_written(tmp_path: Path) -> None:
    # a build's own workdir is deleted when it ends: no state file to resume from
    log: list[str] = []
    state = BuildState(workdir=tmp_path, persist=False)
    assert run_steps(make_steps(log), state, Progress(stream=io.StringIO()))
    assert log == ["a", "b", "c"] and state.done == ["a", "b", "c"]
    assert not (tmp_path / "ucimage-build.json").exists()
