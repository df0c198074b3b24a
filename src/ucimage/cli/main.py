"""Entry point of the ``ucimage`` console script.

Each verb lives in a module of this package that exposes
``register(subparsers)``; :data:`COMMAND_MODULES` lists them in the order
``ucimage --help`` shows them.  A verb's handler takes the parsed
:class:`argparse.Namespace` and returns an exit status.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import logging
import sys
from collections.abc import Sequence

from ucimage import __version__
from ucimage.errors import UcimageError

#: modules under ucimage.cli that each register one or more verbs
COMMAND_MODULES: tuple[str, ...] = (
    "assertion_cmds",
    "snap_cmds",
    "store_cmds",
    "gadget_cmds",
    "build_cmds",
    "boot_cmds",
    "inspect_cmds",
    "reference_cmds",
)

#: the verbs each module registers, so that running one verb sets up only its own
#: module (tests/unit/test_cli_help.py checks this against what they register)
VERB_MODULES: dict[str, str] = {
    **dict.fromkeys(
        (
            "create-key",
            "keys",
            "delete-key",
            "export-key",
            "import-key",
            "sign",
            "account-key",
            "account",
            "verify",
        ),
        "assertion_cmds",
    ),
    "pack": "snap_cmds",
    "download": "snap_cmds",
    "store": "store_cmds",
    "gadget": "gadget_cmds",
    "snap": "build_cmds",
    "boot": "boot_cmds",
    "inspect": "inspect_cmds",
    "reference": "reference_cmds",
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The ``ucimage`` parser; with a known *verb*, only that verb's module is set up.

    The whole parser (every module's verbs) is what ``ucimage --help``, a mistyped
    verb's error and no verb at all need.
    """
    parser = argparse.ArgumentParser(
        prog="ucimage",
        description=(
            "Build Ubuntu Core images the way ubuntu-image and snapd do: sign model "
            "assertions, fetch snaps from a store (or serve your own), lay out gadget "
            "volumes, write bootable disk images, boot them in QEMU and inspect them. "
            "Rootless and reproducible."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ucimage {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logging on failure"
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    only = VERB_MODULES.get(verb) if verb is not None else None
    for name in (only,) if only else COMMAND_MODULES:
        module = importlib.import_module(f"ucimage.cli.{name}")
        module.register(subparsers)
    return parser


def _skip_httpx_cli() -> None:
    """Keep ``import httpx`` from loading httpx's own command line client.

    httpx's ``__init__`` imports its CLI (click, rich, pygments) whenever they are
    installed, which they are here (uvicorn needs click): ~0.1 s of every store verb's
    start-up, for a tool we never run.  A None entry in sys.modules makes that import
    fail, and httpx then falls back to a stub ``httpx.main``.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _first_verb(args: Sequence[str]) -> str | None:
    """The verb on a command line (the first word that is not an option), if any.

    None when the top-level parser acts before any verb (``-h``, ``--version``):
    its help lists every verb.
    """
    for arg in args:
        if arg in ("--", "-h", "--help", "--version"):
            return None
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        # the program itself, not a caller of main(argv): at interpreter exit the
        # collector's passes over every object cost ~50-80 ms of a build, to free
        # memory the ending process gives back anyway (atexit hooks registered
        # later, such as temporary directories' cleanup, still run first)
        atexit.register(gc.freeze)
    args_list = list(sys.argv[1:] if argv is None else argv)
    _skip_httpx_cli()
    parser = build_parser(_first_verb(args_list))
    args = parser.parse_args(args_list)
    debug = bool(getattr(args, "debug", False))
    level = logging.DEBUG if debug else logging.WARNING
    if getattr(args, "verbose", False):
        level = min(level, logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except UcimageError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
