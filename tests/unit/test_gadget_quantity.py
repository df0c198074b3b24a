"""Sizes and offsets as snapd's gadget/quantity reads them."""

from __future__ import annotations

import pytest

from ucimage.gadget.parse import YamlInt
from ucimage.gadget.quantity import (
    QuantityError,
    RelativeOffset,
    iec,
    parse_offset,
    parse_relative_offset,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("440", 440), ("1M", 1 << 20), ("50M", 50 << 20), ("2G", 2 << 30), (512, 512)],
)
def test_parse_size(text: object, value: int) -> None:
    assert parse_size(text) == value
    assert parse_offset(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("51200K", 'cannot parse size "51200K": invalid suffix "K"'),
        ("1MB", 'cannot parse size "1MB": invalid suffix "MB"'),
        ("1m", 'cannot parse size "1m": invalid suffix "m"'),
        ("M", 'cannot parse size "M": no numerical prefix'),
        ("", 'cannot parse size "": "" is not a number'),
        ("-1", 'cannot parse size "-1": size cannot be negative'),
        ("1-2", 'cannot parse size "1-2": "1-2" is not a number'),
        (" 1", 'cannot parse size " 1": no numerical prefix'),
        ("99999999999999999999", '"99999999999999999999" is not a number'),
        ("9999999999G", "size is too large"),
    ],
)
def test_bad_size(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as exc:
        parse_size(text)
    assert str(exc.value) == message or message in str(exc.value)


def test_yaml_text_is_used() -> None:
    # YAML 1.1 reads 0x10 and 010 as numbers; snapd reads the text
    with pytest.raises(QuantityError, match='invalid suffix "x10"'):
        parse_size(YamlInt(16, "0x10"))
    assert parse_size(YamlInt(8, "010")) == 10


def test_offset_errors() -> None:
    with pytest.raises(QuantityError, match='cannot parse offset "-5": offset cannot be negative'):
        parse_offset("-5")
    with pytest.raises(QuantityError, match="cannot unmarshal gadget offset"):
        parse_offset([1])
    with pytest.raises(QuantityError, match="cannot unmarshal gadget size"):
        parse_size({"a": 1})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("mbr+92", RelativeOffset("mbr", 92)),
        ("777", RelativeOffset(None, 777)),
        ("4096M", RelativeOffset(None, 4 << 30)),
        ("a+1M", RelativeOffset("a", 1 << 20)),
    ],
)
def test_relative_offset(text: str, value: RelativeOffset) -> None:
    assert parse_relative_offset(text) == value
    assert str(value) == text.replace("4096M", str(4 << 30)).replace("1M", str(1 << 20))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+92", "missing volume name"),
        ("mbr+", "missing offset"),
        ("4097M", "offset above 4G limit"),
        ("mbr+1K", 'cannot parse offset "1K": invalid suffix "K"'),
    ],
)
def test_bad_relative_offset(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as exc:
        parse_relative_offset(text)
    assert str(exc.value) == f'cannot parse relative offset "{text}": {message}'


def test_iec() -> None:
    assert iec(440) == "440 B"
    assert iec(1 << 20) == "1 MiB"
    assert iec(1536 << 10) == "1.50 MiB"
    assert iec(3 << 30) == "3 GiB"
