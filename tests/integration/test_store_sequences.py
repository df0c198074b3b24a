"""Sequence-forming assertions (validation sets): the client asks for the latest
sequence like snapd's ``SeqFormingAssertion`` and our store answers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.build_snaps import SNAP_SIGN, TRUSTED_FILES
from ucimage.assertions import Database, PrivateKey, load_assertion_files, sign_json
from ucimage.store.admin import StoreAdmin
from ucimage.store.client import StoreClient
from ucimage.store.errors import AssertionNotFoundError, StoreError

from .store_util import RunningStore, make_store, running_store

pytestmark = pytest.mark.integration


def _validation_set(sequence: int, revision: int = 0) -> bytes:
    key = PrivateKey.from_pem((SNAP_SIGN / "keys" / "testkey1.private.pem").read_bytes())
    doc = {
        "type": "validation-set", "authority-id": "testbrand", "account-id": "testbrand",
        "series": "16", "name": "vs1", "sequence": str(sequence),
        "snaps": [{"name": "hello-world", "id": "a" * 32, "presence": "optional"}],
        "timestamp": "2024-01-01T00:00:00+00:00",
    }  # fmt: skip
    if revision:
        doc["revision"] = str(revision)
    return sign_json(json.dumps(doc), key).encode()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStore]:
    root = make_store(tmp_path_factory.mktemp("seq") / "store")
    with running_store(root) as server:
        admin = StoreAdmin(server.url, server.token)
        # sequences 1..3, sequence 2 in two revisions; added out of order
        for data in (_validation_set(3), _validation_set(1), _validation_set(2),
                     _validation_set(2, revision=1)):  # fmt: skip
            admin.add_assertions(data)
        yield server


@pytest.fixture
def client(store: RunningStore, tmp_path: Path) -> Iterator[StoreClient]:
    with StoreClient(store.url, cache_dir=tmp_path / "cache", env={}) as c:
        yield c


def test_latest_and_pinned_sequences(client: StoreClient) -> None:
    latest = client.get_sequence_assertion("validation-set", ("16", "testbrand", "vs1"))
    assert latest.primary_key == ("16", "testbrand", "vs1", "3")
    two = client.get_sequence_assertion("validation-set", ("16", "testbrand", "vs1"), 2)
    assert two.primary_key[-1] == "2" and two.revision == 1  # the newest revision of it
    with pytest.raises(AssertionNotFoundError, match="sequence 9"):
        client.get_sequence_assertion("validation-set", ("16", "testbrand", "vs1"), 9)
    with pytest.raises(AssertionNotFoundError, match="latest sequence"):
        client.get_sequence_assertion("validation-set", ("16", "testbrand", "nope"))
    assert client.stats.assertion_requests == 4


def test_bad_sequence_requests_fail_before_asking(client: StoreClient) -> None:
    with pytest.raises(StoreError, match="do not form sequences"):
        client.get_sequence_assertion("model", ("16", "x"))
    with pytest.raises(StoreError, match="sequence key has 3 values"):
        client.get_sequence_assertion("validation-set", ("testbrand", "vs1"))
    with pytest.raises(StoreError, match="invalid validation-set sequence"):
        client.get_sequence_assertion("validation-set", ("16", "testbrand", "vs1"), 0)
    assert client.stats.assertion_requests == 0


def test_wire_form_is_snapds(store: RunningStore) -> None:
    """snapd: GET /v2/assertions/validation-set/16/ACCOUNT/NAME?max-format=0&sequence=latest
    (its fakestore only serves this form; `snap known --direct` uses the full key)."""
    base = f"{store.url}/v2/assertions/validation-set/16/testbrand/vs1"
    accept = {"Accept": "application/x.ubuntu.assertion"}
    got = httpx.get(base + "?max-format=0&sequence=latest", headers=accept)
    assert got.status_code == 200 and b"sequence: 3\n" in got.content
    got = httpx.get(base + "/1?max-format=0", headers=accept)
    assert got.status_code == 200 and b"sequence: 1\n" in got.content
    got = httpx.get(base + "?sequence=first", headers=accept)
    assert got.status_code == 400


def test_latest_sequence_chain_verifies(client: StoreClient) -> None:
    db = Database(extra_trusted=load_assertion_files(TRUSTED_FILES))
    latest = client.get_sequence_assertion("validation-set", ("16", "testbrand", "vs1"))
    assert client.fetch_chain(latest, db) == [latest]  # its signer is a trusted root
    db.check(latest)
