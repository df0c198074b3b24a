"""Start-up cost of the CLI: building the parser imports no verb's implementation.

``ucimage --help`` and every verb's argument parsing must not pay for
cryptography, httpx, PyYAML or the packages that do the work; the handlers
import those when they run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ucimage.cli import assertion_cmds
from ucimage.cli.main import COMMAND_MODULES, build_parser

#: what building the whole parser may import from ucimage
_ALLOWED = {"ucimage", "ucimage.errors", "ucimage.cli", "ucimage.build", "ucimage.build.options"}
_HEAVY = ("cryptography", "httpx", "yaml", "pydantic", "rich", "starlette", "uvicorn")


def _modules_after(code: str) -> set[str]:
    # None entries are imports blocked on purpose (httpx._main), not loaded modules
    loaded = "sorted(k for k, v in sys.modules.items() if v is not None)"
    probe = f"import json, sys\n{code}\nprint(json.dumps({loaded}))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def test_parser_imports_no_implementation() -> None:
    loaded = _modules_after("from ucimage.cli.main import build_parser\nbuild_parser()")
    ours = {m for m in loaded if m.startswith("ucimage")}
    cli = {f"ucimage.cli.{name}" for name in COMMAND_MODULES} | {"ucimage.cli.main"}
    assert ours - cli - _ALLOWED == set()
    assert not {m for m in loaded if m.split(".")[0] in _HEAVY}


@pytest.mark.parametrize("argv", [["--help"], ["snap", "--help"], ["store", "push", "--help"]])
def test_help_imports_no_implementation(argv: list[str]) -> None:
    loaded = _modules_after(
        "import contextlib, io\n"
        "from ucimage.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})"
    )
    assert not {m for m in loaded if m.split(".")[0] in _HEAVY}


def test_httpx_skips_its_own_cli() -> None:
    loaded = _modules_after(
        "from ucimage.cli.main import _skip_httpx_cli\n_skip_httpx_cli()\nimport httpx"
    )
    assert "httpx" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("click", "rich", "pygments")}


def test_parser_constants_match_the_library() -> None:
    from ucimage.assertions.crypto import SIGNATURE_STYLES
    from ucimage.assertions.keyring import DEFAULT_KEY_NAME

    assert assertion_cmds.DEFAULT_KEY_NAME == DEFAULT_KEY_NAME
    assert assertion_cmds.SIGNATURE_STYLES == SIGNATURE_STYLES


def test_every_verb_still_listed() -> None:
    help_text = build_parser().format_help()
    for verb in (
        "create-key", "sign", "verify", "pack", "download", "store", "gadget", "snap",
        "boot", "inspect", "reference",
    ):  # fmt: skip
        assert verb in help_text
