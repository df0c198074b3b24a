from __future__ import annotations

import pytest

from ucimage.cli.main import main


def test_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "ucimage" in capsys.readouterr().out


def test_no_verb_prints_help() -> None:
    assert main([]) == 2
