"""Assertion and key verbs: create-key, keys, export-key, import-key, sign, account-key,
account, verify.  The logic lives in :mod:`ucimage.assertions`."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ucimage.errors import UsageError

if TYPE_CHECKING:
    from ucimage.assertions.crypto import PrivateKey
    from ucimage.assertions.keyring import Keyring

# Handlers import ucimage.assertions (and so cryptography) when they run: building the
# parser for any verb, or `ucimage --help`, must stay cheap.  These two mirror
# ucimage.assertions.keyring.DEFAULT_KEY_NAME and .crypto.SIGNATURE_STYLES for the
# parser (tests/unit/test_cli_startup.py checks that they agree).
DEFAULT_KEY_NAME = "default"
SIGNATURE_STYLES = ("snapd", "gnupg")

_KEYRING_HELP = (
    "directory of the keyring (default: $UCIMAGE_KEYRING, else $XDG_DATA_HOME/ucimage/keys)"
)
_PASS_HELP = (
    "read the key's passphrase from the first line of FILE (also: $UCIMAGE_PASSPHRASE; "
    "otherwise asked on the terminal when needed)"
)


def _add_keyring(parser: argparse.ArgumentParser, *, passphrase: bool = True) -> None:
    parser.add_argument("--keyring", metavar="DIR", help=_KEYRING_HELP)
    if passphrase:
        parser.add_argument("--passphrase-file", metavar="FILE", help=_PASS_HELP)


def _given_passphrase(args: argparse.Namespace) -> str | None:
    path = getattr(args, "passphrase_file", None)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read passphrase file {path}: {exc.strerror}") from None
        lines = text.splitlines()
        return lines[0] if lines else ""
    return os.environ.get("UCIMAGE_PASSPHRASE")


def _load_key(args: argparse.Namespace, keyring: Keyring, name: str) -> PrivateKey:
    passphrase = _given_passphrase(args)
    if passphrase is None and keyring.is_protected(name) and sys.stdin.isatty():
        passphrase = getpass.getpass(f"Passphrase of key {name!r}: ")
    return keyring.load(name, passphrase)


def _write(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


# --------------------------------------------------------------------------- handlers


def _create_key(args: argparse.Namespace) -> int:
    from ucimage.assertions.errors import KeyringError
    from ucimage.assertions.keyring import Keyring, check_key_name

    keyring = Keyring(args.keyring)
    name = args.name
    check_key_name(name)
    passphrase = _given_passphrase(args)
    if passphrase is None and not args.no_passphrase and sys.stdin.isatty():
        first = getpass.getpass("Passphrase (empty for none): ")
        second = getpass.getpass("Confirm passphrase: ")
        if first != second:
            raise KeyringError("passphrases do not match")
        passphrase = first or None
    key = keyring.create(name, bits=args.bits, passphrase=passphrase)
    print(f"{name}  {key.id}")
    return 0


def _keys(args: argparse.Namespace) -> int:
    from ucimage.assertions.keyring import Keyring

    keys = Keyring(args.keyring).list()
    if args.json:
        print(json.dumps([{"name": k.name, "sha3-384": k.id} for k in keys]))
        return 0
    if not keys:
        print("No keys found. Create one with: ucimage create-key NAME", file=sys.stderr)
        return 0
    width = max(len("Name"), *(len(k.name) for k in keys))
    print(f"{'Name':<{width}}  SHA3-384")
    for k in keys:
        print(f"{k.name:<{width}}  {k.id}")
    return 0


def _delete_key(args: argparse.Namespace) -> int:
    from ucimage.assertions.keyring import Keyring

    keyring = Keyring(args.keyring)
    keyring.delete(args.name)
    print(f"deleted key {args.name!r} from {keyring.directory}", file=sys.stderr)
    return 0


def _export_key(args: argparse.Namespace) -> int:
    from ucimage.assertions.keyring import Keyring
    from ucimage.assertions.signing import account_key_request

    keyring = Keyring(args.keyring)
    if args.account is None:
        _write(keyring.public_key(args.name).encode() + "\n")
        return 0
    key = _load_key(args, keyring, args.name)
    _write(account_key_request(key, args.account, args.name).encode())
    return 0


def _import_key(args: argparse.Namespace) -> int:
    from ucimage.assertions.errors import KeyringError
    from ucimage.assertions.keyring import Keyring, check_key_name
    from ucimage.assertions.openpgp import export_from_gnupg, load_foreign_key

    passphrase = _given_passphrase(args)
    if (args.file is None) == (args.from_snap is None):
        raise UsageError("give either a key FILE or --from-snap NAME")
    if args.from_snap is not None:
        home = Path(args.gnupg_home) if args.gnupg_home else None
        data = export_from_gnupg(args.from_snap, home, passphrase)
        args.name = args.name or args.from_snap
    else:
        try:
            data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        key, suggested = load_foreign_key(data, passphrase)
    except KeyringError as exc:
        if passphrase is None and "passphrase" in exc.message and sys.stdin.isatty():
            passphrase = getpass.getpass("Passphrase of the imported key: ")
            key, suggested = load_foreign_key(data, passphrase)
        else:
            raise
    name = args.name or suggested
    if not name:
        raise UsageError(
            "the key file names no key; give a name with --name NAME",
        )
    check_key_name(name)
    if key.bits < 4096:
        print(f"warning: {key.bits}-bit key; snapd's tools need 4096 bits", file=sys.stderr)
    Keyring(args.keyring).add(name, key, passphrase)
    print(f"{name}  {key.id}")
    return 0


def _signing_time(value: str | None) -> dt.datetime | None:
    from ucimage.assertions import checks

    if value is None:
        return None
    try:
        return checks.parse_rfc3339(value)
    except ValueError as exc:
        raise UsageError(f"--signing-time: {exc}") from None


def _sign(args: argparse.Namespace) -> int:
    from ucimage.assertions import Database, encode_stream, load_assertion_files
    from ucimage.assertions.keyring import Keyring
    from ucimage.assertions.signing import sign_json

    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    keyring = Keyring(args.keyring)
    key = _load_key(args, keyring, args.key_name)
    when = _signing_time(args.signing_time)
    assertion = sign_json(data, key, when=when, style=args.signature_style)
    if not args.chain:
        _write(assertion.encode())
        return 0
    # like `snap sign --chain`: the assertion, then what it needs (nearest first)
    db = Database()
    db.add_many(load_assertion_files(args.chain))
    chain = db.chain(assertion)
    _write(encode_stream([assertion, *reversed(chain)]))
    return 0


def _account_key(args: argparse.Namespace) -> int:
    from ucimage.assertions import checks
    from ucimage.assertions.keyring import Keyring
    from ucimage.assertions.signing import account_key

    keyring = Keyring(args.keyring)
    authority = _load_key(args, keyring, args.authority_key)
    public = keyring.public_key(args.key)
    for flag in ("since", "until"):
        value = getattr(args, flag)
        if value is not None:
            try:
                checks.parse_rfc3339(value)
            except ValueError as exc:
                raise UsageError(f"--{flag}: {exc}") from None
    a = account_key(
        authority,
        args.authority_id or args.account,
        args.account,
        public,
        name=args.name if args.name is not None else args.key,
        since=args.since,
        until=args.until,
        revision=args.revision,
    )
    _write(a.encode())
    return 0


def _account(args: argparse.Namespace) -> int:
    from ucimage.assertions import checks
    from ucimage.assertions.keyring import Keyring
    from ucimage.assertions.signing import account

    keyring = Keyring(args.keyring)
    authority = _load_key(args, keyring, args.authority_key)
    if args.timestamp is not None:
        try:
            checks.parse_rfc3339(args.timestamp)
        except ValueError as exc:
            raise UsageError(f"--timestamp: {exc}") from None
    a = account(
        authority,
        args.authority_id or args.account,
        args.account,
        display_name=args.display_name,
        username=args.username,
        validation=args.validation,
        timestamp=args.timestamp,
        revision=args.revision,
    )
    _write(a.encode())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ucimage.assertions.verify import verify_files

    results = verify_files(args.files, trusted_files=args.trusted, canonical=args.canonical)
    failed = 0
    for r in results:
        print(r.line())
        if not r.ok:
            failed += 1
            if r.hint and args.hints:
                print(f"  hint: {r.hint}")
    if failed:
        print(f"{failed} of {len(results)} failed", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- registration


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    p = subparsers.add_parser(
        "create-key",
        help="create an RSA-4096 signing key in the keyring",
        description=(
            "Create an RSA key for signing assertions and store it in the keyring (private "
            "file mode 0600). Prints the key's name and sha3-384 id. On a terminal you are "
            "asked for an optional passphrase."
        ),
    )
    p.add_argument("name", nargs="?", default=DEFAULT_KEY_NAME, help="key name (default: default)")
    p.add_argument("--bits", type=int, default=4096, help="RSA key size (default: 4096)")
    p.add_argument(
        "--no-passphrase", action="store_true", help="do not ask for a passphrase on a terminal"
    )
    _add_keyring(p)
    p.set_defaults(func=_create_key)

    p = subparsers.add_parser(
        "keys",
        help="list the keys in the keyring",
        description="List key names and their sha3-384 ids (the sign-key-sha3-384 value).",
    )
    p.add_argument("--json", action="store_true", help="print JSON like `snap keys --json`")
    _add_keyring(p, passphrase=False)
    p.set_defaults(func=_keys)

    p = subparsers.add_parser(
        "delete-key",
        help="delete a key from the keyring",
        description="Delete the private and public files of key NAME (like `snap delete-key`).",
    )
    p.add_argument("name", help="key name")
    _add_keyring(p, passphrase=False)
    p.set_defaults(func=_delete_key)

    p = subparsers.add_parser(
        "export-key",
        help="print a public key, or an account-key-request with --account",
        description=(
            "Print the public key NAME in snapd's encoding (an account-key body), or with "
            "--account a self-signed account-key-request for that account, as "
            "`snap export-key` does."
        ),
    )
    p.add_argument("name", nargs="?", default=DEFAULT_KEY_NAME, help="key name (default: default)")
    p.add_argument("--account", metavar="ID", help="print an account-key-request for account ID")
    _add_keyring(p)
    p.set_defaults(func=_export_key)

    p = subparsers.add_parser(
        "import-key",
        help="import a private key from gpg or a PEM file",
        description=(
            "Import an OpenPGP secret key exported from gpg (armored or binary; e.g. the "
            "keys of `snap create-key`: gpg --homedir ~/.snap/gnupg --export-secret-keys "
            "NAME) or a PEM private key. The name defaults to the key's user id. With "
            "--passphrase-file the key is unlocked with that passphrase and stored "
            "protected by it."
        ),
    )
    p.add_argument("file", nargs="?", help="key file, or - for stdin")
    p.add_argument(
        "--from-snap",
        metavar="NAME",
        help="export key NAME from the GnuPG keyring `snap create-key` uses (needs gpg)",
    )
    p.add_argument(
        "--gnupg-home",
        metavar="DIR",
        help="GnuPG home for --from-snap (default: $SNAP_GNUPG_HOME, else ~/.snap/gnupg)",
    )
    p.add_argument("--name", help="name in the keyring (default: the OpenPGP user id)")
    _add_keyring(p)
    p.set_defaults(func=_import_key)

    p = subparsers.add_parser(
        "sign",
        help="sign JSON headers into an assertion (like `snap sign`)",
        description=(
            "Read a JSON object of headers (strings, lists or objects; an optional 'body' "
            "string) and print the signed assertion. type, body-length and "
            "sign-key-sha3-384 are filled in; nothing else is (a model needs a timestamp). "
            "Stricter than `snap sign`: bad header names and duplicate keys are errors."
        ),
    )
    p.add_argument("file", nargs="?", default="-", help="JSON file (default: - for stdin)")
    p.add_argument(
        "-k",
        "--key",
        dest="key_name",
        default=DEFAULT_KEY_NAME,
        metavar="NAME",
        help="signing key name (default: default)",
    )
    p.add_argument(
        "--chain",
        action="append",
        default=[],
        metavar="FILE",
        help="append the signing account-key and account (and their chain) found in FILE "
        "(repeatable); the built-in Canonical root is left out",
    )
    p.add_argument(
        "--signing-time",
        metavar="RFC3339",
        help="signature creation time (default: now), for reproducible output",
    )
    p.add_argument(
        "--signature-style",
        choices=SIGNATURE_STYLES,
        default="snapd",
        help="signature subpackets as snapd's signer writes them (default) or as GnuPG does",
    )
    _add_keyring(p)
    p.set_defaults(func=_sign)

    p = subparsers.add_parser(
        "account-key",
        help="mint an account-key assertion signed by an authority key",
        description=(
            "Print an account-key assertion for the public key --key of account --account, "
            "signed by --authority-key. Signing a key with itself for its own account makes "
            "a root of trust for a brand or self-hosted store (use it with verify "
            "--trusted)."
        ),
    )
    p.add_argument("--authority-key", required=True, metavar="NAME", help="signing key name")
    p.add_argument("--account", required=True, metavar="ID", help="account-id of the key owner")
    p.add_argument(
        "--key", required=True, metavar="NAME", help="keyring name of the key to certify"
    )
    p.add_argument("--name", metavar="N", help="the key's name header (default: --key)")
    p.add_argument(
        "--authority-id", metavar="ID", help="account of the authority key (default: --account)"
    )
    p.add_argument("--since", metavar="RFC3339", help="start of validity (default: now)")
    p.add_argument("--until", metavar="RFC3339", help="end of validity (default: none)")
    p.add_argument("--revision", type=int, default=0, help="assertion revision (default: 0)")
    _add_keyring(p)
    p.set_defaults(func=_account_key)

    p = subparsers.add_parser(
        "account",
        help="mint an account assertion signed by an authority key",
        description="Print an account assertion for --account signed by --authority-key.",
    )
    p.add_argument("--authority-key", required=True, metavar="NAME", help="signing key name")
    p.add_argument("--account", required=True, metavar="ID", help="the account-id")
    p.add_argument("--display-name", help="display name (default: the account id)")
    p.add_argument("--username", help="optional username")
    p.add_argument(
        "--validation",
        default="unproven",
        help="unproven, starred or verified (default: unproven)",
    )
    p.add_argument(
        "--authority-id", metavar="ID", help="account of the authority key (default: --account)"
    )
    p.add_argument("--timestamp", metavar="RFC3339", help="timestamp (default: now)")
    p.add_argument("--revision", type=int, default=0, help="assertion revision (default: 0)")
    _add_keyring(p)
    p.set_defaults(func=_account)

    p = subparsers.add_parser(
        "verify",
        help="verify assertion files against the trusted roots",
        description=(
            "Read assertion streams, add them all to one database and check every "
            "assertion: signature, signing key belongs to the authority and is valid at the "
            "timestamp, prerequisites present, chain up to a trusted root (the built-in "
            "Canonical root, files in $XDG_CONFIG_HOME/ucimage/trusted/ and --trusted). "
            "Prints one line per assertion; exits 0 only if all verify."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="assertion files (- for stdin)")
    p.add_argument(
        "--trusted",
        action="append",
        default=[],
        metavar="FILE",
        help="also trust the assertions in FILE as roots (repeatable)",
    )
    p.add_argument(
        "--canonical",
        action="store_true",
        help="also require snapd's canonical encoding and name the first line that differs",
    )
    p.add_argument("--hints", action="store_true", help="print a hint under each failure")
    p.set_defaults(func=_verify)
