"""`ucimage store init`: root authority, keys, token, store id; the store's signatures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ucimage.assertions import Database, load_assertion_files
from ucimage.cli.main import main
from ucimage.store.errors import StoreSetupError
from ucimage.store.server import Store, init_store
from ucimage.store.server.authority import index_assertion
from ucimage.store.server.backend import now_rfc3339


def test_init_creates_a_complete_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    assert main(["store", "init", str(root), "--authority-id", "my-store", "--key-bits",
                 "2048", "--store-id", "factory-1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "--trusted" in out and "root.assert" in out
    config = json.loads((root / "store.json").read_text())
    assert config["store-id"] == "factory-1" and config["authority-id"] == "my-store"
    for secret in ("upload-token", "keys/root.pem", "keys/store.pem"):
        assert stat.S_IMODE((root / secret).stat().st_mode) == 0o600, secret
    assert len((root / "upload-token").read_text().strip()) >= 32

    account, root_key = load_assertion_files([root / "root.assert"])
    assert account.type == "account" and account.header("account-id") == "my-store"
    assert root_key.type == "account-key" and root_key.sign_key_id == root_key.header(
        "public-key-sha3-384"
    )  # self-signed: the would-be trust root

    # the store key chains to the root; what the store signs checks against root.assert
    store = Store(root)
    db = Database(trusted=[account, root_key])
    store_key = store.db.assertion("account-key", [store.authority.store_key.id], max_format=None)
    assert store_key is not None
    decl = store.authority.sign_store_assertion(
        "snap-declaration",
        {"series": "16", "snap-id": "A" * 32, "snap-name": "some-snap",
         "publisher-id": "my-store", "timestamp": now_rfc3339()},
    )  # fmt: skip
    from ucimage.assertions import decode

    for blob in (store_key, decl):
        db.add(decode(blob))
    db.check(decode(decl))
    assert index_assertion(decl).primary_key == ("16", "A" * 32)


def test_init_refuses_existing_and_bad_ids(tmp_path: Path) -> None:
    init_store(tmp_path / "s", key_bits=2048)
    with pytest.raises(StoreSetupError, match="already exists"):
        init_store(tmp_path / "s", key_bits=2048)
    with pytest.raises(StoreSetupError, match="authority id"):
        init_store(tmp_path / "t", authority_id="Bad/Id", key_bits=2048)
    assert not (tmp_path / "t" / "store.json").exists()
    with pytest.raises(StoreSetupError, match="not a ucimage store"):
        Store(tmp_path / "nowhere")


def test_init_refuses_a_non_empty_directory_that_is_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me\n")
    assert main(["store", "init", str(busy), "--key-bits", "2048"]) != 0
    err = capsys.readouterr().err
    assert f"error: '{busy}' is not empty and is not a ucimage store" in err
    assert f"hint: give a new or empty directory, e.g. `ucimage store init {busy}/store`" in err
    # nothing written, nothing lost
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    assert (busy / "notes.txt").read_text() == "keep me\n"
    # a file is no directory either
    with pytest.raises(StoreSetupError, match="not empty and is not a ucimage store"):
        init_store(busy / "notes.txt", key_bits=2048)
    # an existing empty directory is fine
    (tmp_path / "empty").mkdir()
    assert (init_store(tmp_path / "empty", key_bits=2048) / "store.json").exists()
