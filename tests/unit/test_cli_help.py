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


def test_verb_modules_match_what_each_module_registers() -> None:
    import importlib

    from ucimage.cli.main import COMMAND_MODULES, VERB_MODULES

    registered: dict[str, str] = {}
    for name in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        module = importlib.import_module(f"ucimage.cli.{name}")
        module.register(parser.add_subparsers())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                registered.update(dict.fromkeys(action.choices, name))
    assert registered == VERB_MODULES


@pytest.mark.parametrize(
    ("argv", "verbs"),
    [
        (["snap", "m.model"], {"snap"}),
        (["--debug", "store", "serve", "x"], {"store"}),
        (["--debug"], None),
        (["-h", "snap"], None),
        (["--version", "snap"], None),
        (["snap", "-h"], {"snap"}),
        (["no-such-verb"], None),
        ([], None),
    ],
)
def test_only_the_invoked_verb_is_set_up(argv: list[str], verbs: set[str] | None) -> None:
    from ucimage.cli.main import VERB_MODULES, _first_verb

    parser = build_parser(_first_verb(argv))
    choices = next(
        set(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert choices == (verbs if verbs is not None else set(VERB_MODULES))


def test_a_mistyped_verb_still_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    from ucimage.cli.main import main

    with pytest.raises(SystemExit):
        main(["snapp", "m.model"])
    err = capsys.readouterr().err
    assert "invalid choice: 'snapp'" in err and "'inspect'" in err and "'sign'" in err
