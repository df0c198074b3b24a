"""Every verb, option and positional of `ucimage` explains itself in --help."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from ucimage.cli.main import build_parser


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("ucimage",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Yield (command path, parser) for the parser and every subparser below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


PARSERS = dict(walk(build_parser()))


def test_the_walk_reaches_nested_verbs() -> None:
    # guards the walk itself: two levels deep and the verbs named in the reports
    for path in (
        ("ucimage", "snap"),
        ("ucimage", "store", "serve"),
        ("ucimage", "store", "init"),
        ("ucimage", "download"),
    ):
        assert path in PARSERS
    assert len(PARSERS) > 20


@pytest.mark.parametrize("path", sorted(PARSERS), ids=" ".join)
def test_every_argument_has_help(path: tuple[str, ...]) -> None:
    parser = PARSERS[path]
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            # every verb is listed with a one-line help in its parent's --help
            listed = {choice.dest for choice in action._choices_actions}
            missing += [f"verb {v}" for v in action.choices if v not in listed]
            missing += [f"verb {c.dest}" for c in action._choices_actions if not c.help]
            continue
        if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
            missing.append(name)
    assert not missing, f"{' '.join(path)}: no help text for {missing}"


@pytest.mark.parametrize("path", sorted(PARSERS), ids=" ".join)
def test_help_renders_every_argument(path: tuple[str, ...]) -> None:
    parser = PARSERS[path]
    text = parser.format_help()
    for action in parser._actions:
        if action.option_strings:
            assert action.option_strings[0] in text, (path, action.option_strings)
