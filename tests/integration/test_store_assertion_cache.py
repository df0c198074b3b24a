"""The client's assertion cache is shared by every store: two stores serving the
same snap bytes under different roots must not poison each other's builds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ucimage.assertions import Database, load_assertion_files
from ucimage.store.admin import StoreAdmin
from ucimage.store.client import StoreClient
from ucimage.store.errors import VerificationError

from .store_util import RunningStore, make_snap, make_store, running_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=[("store-a", "store-b"), ("same-id", "same-id")])
def two_stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningStore, RunningStore]]:
    """Two stores (different root keys; different or equal authority ids) serving the
    same snap file, so its snap-revision has the same primary key in both."""
    work = tmp_path_factory.mktemp("two-stores")
    snap = make_snap(work, "twin-snap", "1.0")
    with ExitStack() as stack:
        servers = []
        for i, authority in enumerate(request.param):
            root = make_store(work / f"store{i}", authority_id=authority)
            server = stack.enter_context(running_store(root))
            assert StoreAdmin(server.url, server.token).push(snap, ["stable"])["revision"] == 1
            servers.append(server)
        yield servers[0], servers[1]


def _root_key_id(store: RunningStore) -> str:
    roots = load_assertion_files([store.root / "root.assert"])
    return next(str(x.headers["public-key-sha3-384"]) for x in roots if x.type == "account-key")


def _fetch(store: RunningStore, cache: Path, out: Path) -> StoreClient:
    """Fetch twin-snap from *store* trusting only its root; check the chain is its own."""
    trusted = load_assertion_files([store.root / "root.assert"])
    with StoreClient(store.url, cache_dir=cache, env={}) as client:
        (got,) = client.fetch(
            client.resolve(["twin-snap"]), out, db=Database(extra_trusted=trusted)
        )
    assert got.verified
    keys = [a for a in got.assertions if a.type == "account-key"]
    assert keys and all(k.sign_key_id == _root_key_id(store) for k in keys)
    return client


def test_assertions_cached_from_one_store_do_not_break_another(
    two_stores: tuple[RunningStore, RunningStore], tmp_path: Path
) -> None:
    a, b = two_stores
    cache = tmp_path / "cache"
    assert _root_key_id(a) != _root_key_id(b)
    first = _fetch(a, cache, tmp_path / "a")
    assert first.stats.assertion_requests > 0
    # the same digest from B, trusting only B's root: the cached chain (A's) does not
    # verify, so B's own assertions are fetched and replace it in the cache
    second = _fetch(b, cache, tmp_path / "b")
    assert second.stats.assertion_requests > 0
    # the blob is content-addressed: shared, not downloaded again
    assert second.stats.download_requests == 0
    # now the cache holds B's chain: a rebuild against B asks nothing
    third = _fetch(b, cache, tmp_path / "b2")
    assert third.stats.assertion_requests == 0
    assert third.stats.cache_hits > 0
    # and back to A: works again (A's chain is fetched anew)
    fourth = _fetch(a, cache, tmp_path / "a2")
    assert fourth.stats.assertion_requests > 0


def test_untrusted_chain_from_the_store_itself_still_fails(
    two_stores: tuple[RunningStore, RunningStore], tmp_path: Path
) -> None:
    """The retry is for cached assertions only: B's answers are still checked against A."""
    a, b = two_stores
    cache = tmp_path / "cache"
    _fetch(b, cache, tmp_path / "b")
    trusted_a = load_assertion_files([a.root / "root.assert"])
    with (
        StoreClient(b.url, cache_dir=cache, env={}) as client,
        pytest.raises(VerificationError, match="twin-snap"),
    ):
        client.fetch(
            client.resolve(["twin-snap"]), tmp_path / "x", db=Database(extra_trusted=trusted_a)
        )
