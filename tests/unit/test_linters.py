"""ruff and mypy are part of the test suite."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_ruff_check() -> None:
    proc = _run("ruff", "check", "src", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format() -> None:
    proc = _run("ruff", "format", "--check", "src", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


LINTED = ("src/ucimage", "tests", "bench")


def test_mypy_config_is_strict_over_the_whole_tree() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert set(config["files"]) >= set(LINTED)


def test_mypy() -> None:
    proc = _run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every Python file of src, tests and bench was checked, none left out
    found = re.search(r"no issues found in (\d+) source files?", proc.stdout)
    assert found, proc.stdout
    expected = sum(1 for top in LINTED for _ in (REPO / top).rglob("*.py"))
    assert int(found.group(1)) == expected, proc.stdout
