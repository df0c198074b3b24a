"""The real `snap` client and GnuPG as oracles for keys, signing and verification.

A throwaway GnuPG home gets an RSA-4096 key made the way `snap create-key` makes
them (fixed 2016-01-01 creation time); `snap sign` signs with it, `ucimage`
imports the gpg export and must reproduce `snap sign`'s bytes exactly at the
same signing time; GnuPG verifies the signatures `ucimage` makes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TESTDATA
from ucimage.assertions import (
    Database,
    Keyring,
    account,
    account_key,
    decode,
    decode_stream,
    encode_stream,
)
from ucimage.assertions.checks import format_rfc3339
from ucimage.assertions.crypto import Signature
from ucimage.cli.main import main
from ucimage.run import run

pytestmark = pytest.mark.integration

SNAP_SIGN = TESTDATA / "assertions" / "snap-sign"
KEY_NAME = "oraclekey"
LOCKED_NAME = "lockedkey"
PASSPHRASE = "open sesame"
VALID_INPUTS = sorted(
    p
    for p in (SNAP_SIGN / "inputs").glob("*.json")
    if not p.name.startswith("neg-") and p.stem != "odd-invalid-header-name"
)
NEG_INPUTS = sorted((SNAP_SIGN / "inputs").glob("neg-*.json"))


@dataclass
class Oracle:
    home: Path
    keyring: Path
    key_id: str
    root: Path  # self-signed account + account-key of testbrand for the oracle key

    def env(self) -> dict[str, str]:
        return {"SNAP_GNUPG_HOME": str(self.home)}

    def gpg(self, *args: str, input: bytes | None = None) -> bytes:
        argv = ["gpg", "--homedir", str(self.home), "--batch", "-q", *args]
        return run(argv, input=input, timeout=120).stdout

    def snap(
        self, *args: str, input: bytes | None = None, check: bool = True
    ) -> tuple[int, bytes, bytes]:
        proc = run(["snap", *args], env=self.env(), input=input, check=check, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr


def _gen_key(home: Path, name: str, bits: int, passphrase: str | None) -> None:
    params = [
        "Key-Type: RSA",
        f"Key-Length: {bits}",
        f"Name-Real: {name}",
        "Creation-Date: seconds=1451606400",
        "Preferences: SHA512",
        f"Passphrase: {passphrase}" if passphrase else "%no-protection",
        "%commit",
        "",
    ]
    run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "-q",
            "--pinentry-mode",
            "loopback",
            "--gen-key",
        ],
        input="\n".join(params).encode(),
        timeout=300,
    )


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    for tool in ("gpg", "gpgconf", "snap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    base = tmp_path_factory.mktemp("oracle")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    try:
        _gen_key(home, KEY_NAME, 4096, None)
        _gen_key(home, LOCKED_NAME, 2048, PASSPHRASE)
        keyring = base / "keyring"
        secret = base / "oracle.sec"
        argv = ["gpg", "--homedir", str(home), "--batch", "-q", "--export-secret-keys", KEY_NAME]
        secret.write_bytes(run(argv, timeout=60).stdout)
        assert main(["import-key", "--keyring", str(keyring), str(secret)]) == 0
        key_id = Keyring(keyring).public_key(KEY_NAME).id
        root = base / "testbrand-root.assert"
        key = Keyring(keyring).load(KEY_NAME)
        since = "2016-01-01T00:00:00Z"
        root.write_bytes(
            encode_stream(
                [
                    account(key, "testbrand", "testbrand", timestamp=since),
                    account_key(
                        key, "testbrand", "testbrand", key.public_key(), name=KEY_NAME, since=since
                    ),
                ]
            )
        )
        yield Oracle(home, keyring, key_id, root)
    finally:
        run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, timeout=60)


def _ucimage(oracle: Oracle, *args: str, capsys: pytest.CaptureFixture[bytes]) -> bytes:
    assert main([*args, "--keyring", str(oracle.keyring)]) == 0
    return capsys.readouterr().out


def test_snap_keys_and_export_key_agree(
    oracle: Oracle, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    _, out, _ = oracle.snap("keys", "--json")
    listed = {k["name"]: k["sha3-384"] for k in json.loads(out)}
    assert listed[KEY_NAME] == oracle.key_id
    _, exported, _ = oracle.snap("export-key", KEY_NAME)
    assert _ucimage(oracle, "export-key", KEY_NAME, capsys=capsysbinary) == exported


@pytest.mark.parametrize("path", VALID_INPUTS, ids=lambda p: p.stem)
def test_snap_sign_parity(
    oracle: Oracle, path: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    _, theirs, _ = oracle.snap("sign", "-k", KEY_NAME, input=path.read_bytes())
    assertion = decode(theirs)
    # snap's output verifies with ucimage, given the key's (self-signed) account-key
    # (the account and account-key inputs would replace that root: checked by the unit tests)
    if assertion.type not in ("account", "account-key"):
        out = tmp_path / "theirs.assert"
        out.write_bytes(theirs)
        assert main(["verify", "--trusted", str(oracle.root), str(out)]) == 0
        assert capsysbinary.readouterr().out.endswith(b": ok\n")
    # same headers, body and, at the same signing time, the same signature bytes
    when = format_rfc3339(Signature.decode(assertion.signature).created)
    ours = _ucimage(
        oracle,
        "sign",
        "-k",
        KEY_NAME,
        "--signing-time",
        when,
        "--signature-style",
        "gnupg",
        str(path),
        capsys=capsysbinary,
    )
    assert ours == theirs
    # ucimage's default (snapd-style) signature differs only in its subpackets
    default = decode(_ucimage(oracle, "sign", "-k", KEY_NAME, str(path), capsys=capsysbinary))
    assert default.content == assertion.content
    if assertion.type not in ("account", "account-key"):
        db = Database(extra_trusted=decode_stream(oracle.root.read_bytes()))
        db.check(default)


@pytest.mark.parametrize("path", NEG_INPUTS, ids=lambda p: p.stem)
def test_snap_sign_errors_match(
    oracle: Oracle, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = oracle.snap("sign", "-k", KEY_NAME, input=path.read_bytes(), check=False)
    assert code == 1
    assert main(["sign", "-k", KEY_NAME, "--keyring", str(oracle.keyring), str(path)]) == 1
    ours = capsys.readouterr().err.splitlines()[0]
    assert ours == err.decode().strip()


def test_gnupg_verifies_our_signatures(
    oracle: Oracle, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # (snapd-style signatures carry no issuer, so gpg could not pick the key for them)
    style = "gnupg"
    import base64

    src = SNAP_SIGN / "inputs" / "model-uc20.json"
    a = decode(
        _ucimage(
            oracle,
            "sign",
            "-k",
            KEY_NAME,
            "--signature-style",
            style,
            str(src),
            capsys=capsysbinary,
        )
    )
    blob = base64.b64decode(a.signature.replace(b"\n", b""))
    assert blob[0] == 1
    (tmp_path / "sig.gpg").write_bytes(blob[1:])
    (tmp_path / "content").write_bytes(a.content)
    gpg_verify = [
        "gpg", "--homedir", str(oracle.home), "--batch", "--status-fd", "1",
        "--verify", str(tmp_path / "sig.gpg"), str(tmp_path / "content"),
    ]  # fmt: skip
    proc = run(gpg_verify, timeout=60)
    assert b"[GNUPG:] GOODSIG" in proc.stdout
    assert b"[GNUPG:] VALIDSIG" in proc.stdout
    # and a tampered content does not verify
    (tmp_path / "content").write_bytes(a.content + b"x")
    bad = run(gpg_verify, check=False, timeout=60)
    assert bad.returncode != 0
    assert b"[GNUPG:] BADSIG" in bad.stdout


def test_snap_account_key_request_verifies(
    oracle: Oracle, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    _, theirs, _ = oracle.snap("export-key", "--account=testbrand", KEY_NAME)
    ours = _ucimage(oracle, "export-key", "--account=testbrand", KEY_NAME, capsys=capsysbinary)
    a, b = decode(theirs), decode(ours)
    assert a.type == b.type == "account-key-request"
    assert {k: v for k, v in a.headers.items() if k != "since"} == {
        k: v for k, v in b.headers.items() if k != "since"
    }
    assert a.body == b.body
    for data in (theirs, ours):
        f = tmp_path / "akr.assert"
        f.write_bytes(data)
        assert main(["verify", "--trusted", str(oracle.root), str(f)]) == 0
    assert capsysbinary.readouterr().out.count(b": ok\n") == 2


def test_import_protected_gpg_key(
    oracle: Oracle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = oracle.gpg(
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        PASSPHRASE,
        "--armor",
        "--export-secret-keys",
        LOCKED_NAME,
    )
    assert exported.startswith(b"-----BEGIN PGP PRIVATE KEY BLOCK-----")
    src = tmp_path / "locked.asc"
    src.write_bytes(exported)
    keyring = tmp_path / "keyring"
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    assert (
        main(["import-key", "--keyring", str(keyring), "--passphrase-file", str(wrong), str(src)])
        == 1
    )
    assert capsys.readouterr().err == "error: wrong passphrase for the OpenPGP secret key\n"
    right = tmp_path / "right"
    right.write_text(PASSPHRASE + "\n")
    assert (
        main(["import-key", "--keyring", str(keyring), "--passphrase-file", str(right), str(src)])
        == 0
    )
    assert "2048-bit key" in capsys.readouterr().err
    ring = Keyring(keyring)
    assert ring.is_protected(LOCKED_NAME)
    key = ring.load(LOCKED_NAME, PASSPHRASE)
    colons = oracle.gpg("--with-colons", "--fingerprint", "--list-keys", LOCKED_NAME).decode()
    fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    assert key.public_key().fingerprint.hex().upper() == fpr


def test_import_from_snap_gnupg_home(
    oracle: Oracle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring = tmp_path / "keyring"
    home = str(oracle.home)
    assert main(["import-key", "--keyring", str(keyring), "--gnupg-home", home,
                 "--from-snap", KEY_NAME]) == 0  # fmt: skip
    assert capsys.readouterr().out == f"{KEY_NAME}  {oracle.key_id}\n"
    # a passphrase-protected key, unlocked through gpg's loopback pinentry
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    assert main(["import-key", "--keyring", str(keyring), "--gnupg-home", home,
                 "--passphrase-file", str(pw), "--from-snap", LOCKED_NAME]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith(f"{LOCKED_NAME}  ")
    assert Keyring(keyring).is_protected(LOCKED_NAME)
    # an unknown name is one clear line
    assert main(["import-key", "--keyring", str(keyring), "--gnupg-home", home,
                 "--from-snap", "nosuchkey"]) == 1  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: no secret key with user id 'nosuchkey' in {home}"
