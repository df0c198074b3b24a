"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.snapd_oracle import not_found_store


@pytest.fixture(scope="module")
def stub_store() -> Iterator[str]:
    """A store on 127.0.0.1 that knows nothing, for ``snap prepare-image`` (per module)."""
    with not_found_store() as url:
        yield url
