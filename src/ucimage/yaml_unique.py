"""YAML through PyYAML's safe loader with duplicate mapping keys rejected.

PyYAML silently keeps the last of two equal keys; snapd's YAML reader refuses
them, and so do we everywhere we read YAML (gadget.yaml, snap.yaml, seed.yaml).
Loaders that need more (gadget.yaml keeps scalar text) subclass
:class:`UniqueKeyLoader`.
"""

from __future__ import annotations

from typing import Any

import yaml


def construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A mapping whose keys must be hashable and distinct (a ``ConstructorError`` otherwise)."""
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            ) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader: duplicate (or unhashable) mapping keys are errors."""


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_unique_mapping
)


def load_unique(text: str | bytes) -> Any:
    """``yaml.safe_load`` that also rejects duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)
