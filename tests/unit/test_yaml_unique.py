"""The one duplicate-key-rejecting YAML loader, as gadget.yaml and snap.yaml readers use it."""

from __future__ import annotations

import pytest
import yaml

from ucimage.gadget import GadgetError
from ucimage.gadget.parse import load_yaml
from ucimage.snaps import InvalidSnapYamlError, parse_snap_yaml
from ucimage.yaml_unique import load_unique


def test_plain_yaml_loads_like_safe_load() -> None:
    text = "a: 1\nb: [x, {c: d}]\nbase: &b {k: v}\nmerged:\n  <<: *b\n  z: 2\n"
    assert load_unique(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\nb: 2\na: 3\n", "found duplicate key 'a'"),
        ("outer:\n  k: 1\n  k: 2\n", "found duplicate key 'k'"),
        ("? [a, b]\n: 1\n", "found an unhashable key"),
    ],
)
def test_rejected(text: str, problem: str) -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match=problem):
        load_unique(text)


def test_gadget_and_snap_readers_share_the_rule() -> None:
    with pytest.raises(GadgetError, match="found duplicate key 'volumes'"):
        load_yaml("volumes: {}\nvolumes: {}\n")
    with pytest.raises(InvalidSnapYamlError, match="duplicate key 'name'"):
        parse_snap_yaml("name: a\nname: b\nversion: '1'\n")
    # an unhashable key used to escape as a TypeError
    with pytest.raises(InvalidSnapYamlError, match="unhashable key"):
        parse_snap_yaml("name: a\nversion: '1'\n? [x]\n: 1\n")
