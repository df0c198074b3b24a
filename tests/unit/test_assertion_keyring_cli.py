"""Keyring files and passphrases, and the assertion verbs of the CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import TESTDATA
from ucimage.assertions import (
    AssertionVerifyError,
    Database,
    Keyring,
    KeyringError,
    PrivateKey,
    PublicKey,
    decode,
    decode_stream,
    encode_stream,
    keyring_dir,
)
from ucimage.cli.main import build_parser, main

SNAP_SIGN = TESTDATA / "assertions" / "snap-sign"
TESTKEY1_PEM = SNAP_SIGN / "keys" / "testkey1.private.pem"
TESTKEY1_ID = "7CuZk6mTBm00ORwXvDRH8_CTLgL970-Wqxtw4UT3m5UntguXNEJgdh-g-7nUi2DC"
VERBS = [
    "create-key",
    "keys",
    "delete-key",
    "export-key",
    "import-key",
    "sign",
    "account-key",
    "account",
    "verify",
]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "keyring"
    monkeypatch.setenv("UCIMAGE_KEYRING", str(directory))
    monkeypatch.delenv("UCIMAGE_PASSPHRASE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return directory


def test_keyring_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UCIMAGE_KEYRING", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert keyring_dir() == tmp_path / "data" / "ucimage" / "keys"
    monkeypatch.setenv("UCIMAGE_KEYRING", str(tmp_path / "env"))
    assert keyring_dir() == tmp_path / "env"
    assert keyring_dir(tmp_path / "flag") == tmp_path / "flag"


def test_key_files_are_private(keyring: Path) -> None:
    os.umask(0o022)
    ring = Keyring()
    key = ring.create("brand-key", bits=2048)
    assert _mode(keyring) == 0o700
    for path in keyring.iterdir():
        assert _mode(path) == 0o600, path
    assert {p.name for p in keyring.iterdir()} == {"brand-key.key", "brand-key.pub"}
    assert ring.load("brand-key").id == key.id
    assert [(k.name, k.id, k.protected) for k in ring.list()] == [("brand-key", key.id, False)]


def test_world_readable_key_is_refused(keyring: Path) -> None:
    ring = Keyring()
    ring.create("k", bits=2048)
    (keyring / "k.key").chmod(0o644)
    with pytest.raises(KeyringError, match=r"accessible by others \(mode 0644\)") as exc:
        ring.load("k")
    assert exc.value.hint == f"chmod 600 {keyring / 'k.key'}"


def test_passphrase(keyring: Path) -> None:
    ring = Keyring()
    key = ring.create("secret", bits=2048, passphrase="correct horse")
    assert b"correct horse" not in (keyring / "secret.key").read_bytes()
    assert b"ENCRYPTED" in (keyring / "secret.key").read_bytes()
    assert ring.load("secret", "correct horse").id == key.id
    with pytest.raises(KeyringError) as exc:
        ring.load("secret", "wrong")
    assert exc.value.message == "wrong passphrase for key 'secret'"
    with pytest.raises(KeyringError, match="is protected by a passphrase"):
        ring.load("secret")
    # the public part is readable without the passphrase
    assert ring.public_key("secret").id == key.id
    assert ring.list()[0].protected


def test_names_and_duplicates(keyring: Path) -> None:
    ring = Keyring()
    with pytest.raises(KeyringError, match="invalid key name"):
        ring.create("Bad Name", bits=2048)
    key = PrivateKey.from_pem(TESTKEY1_PEM.read_bytes())
    ring.add("testkey1", key)
    with pytest.raises(KeyringError, match="already exists"):
        ring.add("testkey1", key)
    with pytest.raises(KeyringError, match="already in the keyring as 'testkey1'"):
        ring.add("again", key)
    with pytest.raises(KeyringError, match="no key named 'nope'"):
        ring.load("nope")
    ring.delete("testkey1")
    assert ring.names() == []


def test_default_key_is_rsa_4096(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create-key", "--no-passphrase"]) == 0
    name, key_id = capsys.readouterr().out.split()
    assert name == "default"
    key = Keyring().load("default")
    assert key.bits == 4096 and key.id == key_id
    body = key.public_key().encode()
    assert body.startswith("AcbBTQRWhcGAARAA")
    assert len(body) == 717


def test_cli_keys_export_import(
    keyring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-key", "--name", "testkey1", str(TESTKEY1_PEM)]) == 0
    assert capsys.readouterr().out == f"testkey1  {TESTKEY1_ID}\n"
    assert _mode(keyring / "testkey1.key") == 0o600
    assert main(["keys"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Name      SHA3-384",
        f"testkey1  {TESTKEY1_ID}",
    ]
    assert main(["keys", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "testkey1", "sha3-384": TESTKEY1_ID}]
    assert main(["export-key", "testkey1"]) == 0
    assert capsys.readouterr().out == (SNAP_SIGN / "keys" / "testkey1.export-key.txt").read_text()
    # --account: an account-key-request like snap's, differing only in `since` and signature
    assert main(["export-key", "--account=testbrand", "testkey1"]) == 0
    mine = decode(capsys.readouterr().out.encode())
    theirs = decode((SNAP_SIGN / "keys" / "testkey1.account-key-request").read_bytes())
    assert {k: v for k, v in mine.headers.items() if k != "since"} == {
        k: v for k, v in theirs.headers.items() if k != "since"
    }
    assert mine.body == theirs.body
    db = Database()
    db.add_stream((SNAP_SIGN / "outputs" / "account-self.assert").read_bytes())
    with pytest.raises(AssertionVerifyError, match=f"account testbrand: account-key {TESTKEY1_ID}"):
        db.check(mine)  # testbrand's account is signed by a key we do not have
    db = Database(
        extra_trusted=decode_stream((SNAP_SIGN / "outputs" / "account-self.assert").read_bytes())
    )
    db.check(mine)


def test_cli_sign_verify_mini_root(
    keyring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = Keyring()
    root = ring.create("root", bits=2048)
    ring.create("models", bits=2048)
    out = tmp_path / "root.assert"
    assert main(["account", "--authority-key", "root", "--account", "acme",
                 "--timestamp", "2024-01-01T00:00:00Z"]) == 0  # fmt: skip
    account_text = capsys.readouterr().out
    assert main(["account-key", "--authority-key", "root", "--account", "acme", "--key", "root",
                 "--since", "2024-01-01T00:00:00Z"]) == 0  # fmt: skip
    out.write_text(account_text + "\n" + capsys.readouterr().out)
    chain = tmp_path / "chain.assert"
    assert main(["account-key", "--authority-key", "root", "--account", "acme", "--key", "models",
                 "--since", "2024-01-01T00:00:00Z"]) == 0  # fmt: skip
    chain.write_text(capsys.readouterr().out)
    model_json = tmp_path / "model.json"
    model_json.write_text(
        json.dumps(
            {
                "type": "model",
                "authority-id": "acme",
                "brand-id": "acme",
                "series": "16",
                "model": "widget",
                "architecture": "arm64",
                "gadget": "pi=18-pi",
                "kernel": "pi-kernel=18-pi",
                "base": "core18",
                "timestamp": "2024-06-01T00:00:00Z",
            }
        )
    )
    model = tmp_path / "widget.model"
    assert main(["sign", "-k", "models", "--signing-time", "2024-06-01T00:00:00Z",
                 str(model_json)]) == 0  # fmt: skip
    model.write_bytes(capsys.readouterr().out.encode())
    assert main(["verify", "--trusted", str(out), str(chain), str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "model 16/acme/widget: ok"
    assert len(lines) == 2
    # without the root it fails, naming the missing piece
    assert main(["verify", str(chain), str(model)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"account-key {Keyring().public_key('models').id}: error: account-key " + (
        f"{root.id} of acme not available"
    )
    # the signing time is reproducible: same bytes twice
    assert main(["sign", "-k", "models", "--signing-time", "2024-06-01T00:00:00Z",
                 str(model_json)]) == 0  # fmt: skip
    assert capsys.readouterr().out.encode() == model.read_bytes()
    # a config-dir root works like --trusted
    trusted_dir = tmp_path / "config" / "ucimage" / "trusted"
    trusted_dir.mkdir(parents=True)
    (trusted_dir / "acme.assert").write_bytes(out.read_bytes())
    assert main(["verify", str(chain), str(model)]) == 0
    capsys.readouterr()


def test_verify_canonical(
    keyring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = PrivateKey.generate(bits=2048)
    Keyring().add("k", key)
    content = (
        "type: account\nauthority-id: canonical\naccount-id: x\ntimestamp: 2024-01-01T00:00:00Z\n"
        f"display-name: X\nvalidation: unproven\nsign-key-sha3-384: {key.id}"
    ).encode()
    odd = content + b"\n\n" + key.sign(content).encode().encode() + b"\n"
    path = tmp_path / "odd.assert"
    path.write_bytes(odd)
    from ucimage.assertions import canonical_difference

    diff = canonical_difference(decode(odd))
    assert diff == (
        "not in canonical encoding: line 4 is 'timestamp: 2024-01-01T00:00:00Z', "
        "expected 'display-name: X'"
    )
    # every vector is canonical
    vector = TESTDATA / "assertions" / "snapd-tests" / "test-snapd-remodel-auto-import.assert"
    assert main(["verify", "--canonical", str(vector)]) == 1  # the store key is not included
    capsys.readouterr()
    store = TESTDATA / "assertions" / "canonical" / "canonical-store.account-key"
    assert main(["verify", "--canonical", str(store), str(vector)]) == 0
    assert capsys.readouterr().out.count(": ok\n") == 4


def test_verify_unreadable_and_garbage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello world")
    assert main(["verify", str(tmp_path / "missing"), str(garbage)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("missing: error: cannot read: No such file or directory")
    assert (
        out[1] == f"{garbage}: error: content/signature separator not found "
        "(unexpected end of data after the headers)"
    )


def test_wrong_passphrase_cli(
    keyring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("right\n")
    assert main(["create-key", "locked", "--bits", "2048", "--passphrase-file", str(pw)]) == 0
    capsys.readouterr()
    assert _mode(keyring / "locked.key") == 0o600
    src = tmp_path / "a.json"
    src.write_text(
        json.dumps(
            {
                "type": "account",
                "authority-id": "x",
                "account-id": "x",
                "display-name": "X",
                "validation": "unproven",
                "timestamp": "2024-01-01T00:00:00Z",
            }
        )
    )
    pw.write_text("wrong\n")
    assert main(["sign", "-k", "locked", "--passphrase-file", str(pw), str(src)]) == 1
    assert capsys.readouterr().err == "error: wrong passphrase for key 'locked'\n"
    pw.write_text("right\n")
    assert main(["sign", "-k", "locked", "--passphrase-file", str(pw), str(src)]) == 0
    assert decode(capsys.readouterr().out.encode()).type == "account"


@pytest.mark.parametrize("verb", VERBS)
def test_verb_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: ucimage {verb}" in out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    verb_parser = sub.choices[verb]  # type: ignore[index]
    for action in verb_parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{verb} {action.option_strings} has no help"
            assert action.option_strings[-1] in out


def test_top_level_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


def test_public_key_round_trip() -> None:
    text = (SNAP_SIGN / "keys" / "testkey1.export-key.txt").read_text()
    key = PublicKey.decode(text)
    assert key.id == TESTKEY1_ID
    assert key.encode() + "\n" == text


def test_verify_reference_models_name_the_missing_key(capsys: pytest.CaptureFixture[str]) -> None:
    models = sorted((TESTDATA / "assertions" / "snapcore-models").glob("*.model"))
    assert len(models) == 7
    assert main(["verify", *map(str, models)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    key = "9tydnLa6MTJ-jaQTFUXEwHl1yRx7ZS4K5cyFDhYDcPzhS7uyEkDxdUjg9g08BtNn"
    for line in lines:
        assert line.startswith("model 16/canonical/")
        assert line.endswith(f": error: account-key {key} of canonical not available")


def test_verify_brand_chain_to_canonical_root(capsys: pytest.CaptureFixture[str]) -> None:
    base = TESTDATA / "assertions"
    files = [
        base / "canonical" / "canonical-store.account-key",
        base / "snapd-tests" / "test-snapd.account",
        base / "snapd-tests" / "test-snapd-phelps-test-key.account-key",
        base / "snapd-tests" / "valid-for-testing-pc-20.model",
    ]
    assert main(["verify", "--canonical", *map(str, files)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "account-key BWDEoaqyr25nF5SNCvEv2v7QnM9QsfCc0PBMYD_i2NGSQ32EF2d4D0hqUel3m8ul: ok",
        "account test-snapd: ok",
        "account-key 7qWG-Uwck6Dji43a3Z8ZZrm7rAziZAch3xf76iFvqe4GaD0LI7U9lYPWMSJAsEgu: ok",
        "model 16/test-snapd/my-model: ok",
    ]
    # without the store key the brand chain breaks at that exact link
    assert main(["verify", *map(str, files[1:])]) == 1
    out = capsys.readouterr().out
    store_key = "BWDEoaqyr25nF5SNCvEv2v7QnM9QsfCc0PBMYD_i2NGSQ32EF2d4D0hqUel3m8ul"
    assert f"account test-snapd: error: account-key {store_key} of canonical not available" in out


def test_sign_chain(keyring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--chain appends what the signed assertion needs, found in the given files."""
    Keyring().add("testkey1", PrivateKey.from_pem(TESTKEY1_PEM.read_bytes()))
    outputs = SNAP_SIGN / "outputs"
    src = SNAP_SIGN / "inputs" / "model-uc18.json"
    chain_args = ["--chain", str(outputs / "account-key-self.assert"),
                  "--chain", str(outputs / "account-self.assert")]  # fmt: skip
    assert main(["sign", "-k", "testkey1", *chain_args, str(src)]) == 0
    stream = decode_stream(capsys.readouterr().out.encode())
    assert [a.type for a in stream] == ["model", "account-key", "account"]
    # the bundle verifies on its own once testbrand's key is trusted
    bundle = tmp_path / "bundle.assert"
    bundle.write_bytes(encode_stream(stream))
    trusted = str(outputs / "account-key-self.assert")
    assert main(["verify", "--trusted", trusted, str(bundle)]) == 0
    capsys.readouterr()
    # a missing link is named
    assert main(["sign", "-k", "testkey1", "--chain", str(outputs / "account-self.assert"),
                 str(src)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith(f"error: account-key {TESTKEY1_ID} needed by model 16/testbrand/")


def test_snap_sign_outputs_with_the_cli(
    keyring: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """`ucimage verify` accepts every snap sign output given the throwaway key's account-key,
    and `ucimage sign` with the imported throwaway key reproduces each output byte for byte."""
    from ucimage.assertions.checks import format_rfc3339
    from ucimage.assertions.crypto import Signature

    assert main(["import-key", "--name", "testkey1", str(TESTKEY1_PEM)]) == 0
    capsysbinary.readouterr()
    outputs = sorted((SNAP_SIGN / "outputs").glob("*.assert"))
    trusted = str(SNAP_SIGN / "outputs" / "account-key-self.assert")
    assert main(["verify", "--trusted", trusted, *map(str, outputs)]) == 1
    lines = capsysbinary.readouterr().out.decode().splitlines()
    bad = [line for line in lines if ": ok" not in line]
    assert bad == [
        f"{SNAP_SIGN / 'outputs' / 'odd-invalid-header-name.assert'}: error: "
        'invalid header name: "Bad_Name"'
    ]
    assert len(lines) == len(outputs)
    for out in outputs:
        if out.stem == "odd-invalid-header-name":
            continue
        theirs = out.read_bytes()
        when = format_rfc3339(Signature.decode(decode(theirs).signature).created)
        src = SNAP_SIGN / "inputs" / f"{out.stem}.json"
        assert main(["sign", "-k", "testkey1", "--signing-time", when,
                     "--signature-style", "gnupg", str(src)]) == 0  # fmt: skip
        assert capsysbinary.readouterr().out == theirs, out.stem


def test_delete_key_and_missing_public_file(
    keyring: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = Keyring()
    key = ring.create("k", bits=2048)
    (keyring / "k.pub").unlink()
    assert ring.public_key("k").id == key.id  # derived again from the private file
    assert _mode(keyring / "k.pub") == 0o600
    assert main(["delete-key", "k"]) == 0
    assert ring.names() == []
    assert main(["delete-key", "k"]) == 1
    assert "no key named 'k'" in capsys.readouterr().err
