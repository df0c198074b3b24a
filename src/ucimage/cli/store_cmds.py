"""Verbs ``store init|serve|push|release|list|add-assertion``: the self-hosted store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ucimage.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    store = subparsers.add_parser(
        "store",
        help="run your own snap store (init, serve, push, release, list, add-assertion)",
        description="A self-hosted snap store that snapd's store clients and ucimage talk to.",
    )
    sub = store.add_subparsers(dest="store_verb", metavar="STORE_VERB")

    p = sub.add_parser("init", help="create a store directory (keys, root.assert, token)")
    p.add_argument("directory", metavar="DIR", help="new store directory (missing or empty)")
    p.add_argument("--authority-id", help="account id of the store's root authority")
    p.add_argument("--store-id", help="store id (default: generated)")
    p.add_argument(
        "--key-bits", type=int, default=4096, help="RSA size of the root key (default: 4096)"
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="serve a store over HTTP")
    p.add_argument(
        "directory", metavar="DIR", nargs="?", default=".", help="store directory (default: .)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument(
        "--require-auth", action="store_true", help="reads need the token too (default: open)"
    )
    p.add_argument("--access-log", action="store_true", help="log every request to stdout")
    p.set_defaults(func=cmd_serve)

    def remote(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            metavar="URL",
            help="store URL (default: $UCIMAGE_STORE_URL or http://127.0.0.1:8080)",
        )
        p.add_argument(
            "--token-file", metavar="FILE", help="upload token (default: $UCIMAGE_STORE_TOKEN)"
        )
        p.add_argument("--json", action="store_true", help="print the store's JSON answer")

    p = sub.add_parser("push", help="upload a snap as its next revision")
    p.add_argument("snap", metavar="FILE.snap", help="the snap file to upload")
    p.add_argument("--release", metavar="CHANNEL,...", help="release to these channels")
    remote(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("release", help="release a revision to channels")
    p.add_argument("name", help="snap name")
    p.add_argument("revision", type=int, help="revision number to release")
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="track/risk/branch")
    remote(p)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("list", help="list snaps, revisions and channels")
    remote(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "add-assertion", help="add assertions (accounts, account-keys, models, validation-sets)"
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="assertion files")
    remote(p)
    p.set_defaults(func=cmd_add_assertion)

    def no_verb(args: argparse.Namespace) -> int:
        store.print_help()
        return 2

    store.set_defaults(func=no_verb)


def cmd_init(args: argparse.Namespace) -> int:
    from ucimage.store.server import init_store

    root = init_store(
        Path(args.directory),
        authority_id=args.authority_id,
        store_id=args.store_id,
        key_bits=args.key_bits,
    )
    config = json.loads((root / "store.json").read_text())
    print(f"created store {config['store-id']} in {root}")
    print(f"  root authority: {config['authority-id']}, trust it with --trusted {root}/root.assert")
    print(f"  upload token:   {root}/upload-token")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ucimage.store.server import serve

    def ready(port: int) -> None:
        print(f"serving {args.directory} on http://{args.host}:{port}", flush=True)

    serve(
        Path(args.directory),
        args.host,
        args.port,
        require_auth=args.require_auth,
        access_log=args.access_log,
        ready=ready,
    )
    return 0


def _admin(args: argparse.Namespace) -> object:
    from ucimage.store.admin import StoreAdmin, read_token

    return StoreAdmin(args.store, read_token(args.token_file))


def cmd_push(args: argparse.Namespace) -> int:
    from ucimage.store.admin import StoreAdmin

    admin = _admin(args)
    assert isinstance(admin, StoreAdmin)
    release = [c for c in (args.release or "").split(",") if c]
    result = admin.push(args.snap, release)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    state = "already uploaded as" if result.get("existing") else "pushed"
    print(f"{result['name']}: {state} revision {result['revision']}")
    if result.get("released"):
        print(f"released to {', '.join(result['released'])}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from ucimage.store.admin import StoreAdmin

    admin = _admin(args)
    assert isinstance(admin, StoreAdmin)
    if args.revision < 1:
        raise UsageError(f"invalid revision {args.revision}: must be a positive integer")
    result = admin.release(args.name, args.revision, args.channels)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"released {args.name} revision {args.revision} to {', '.join(result['channels'])}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ucimage.store.admin import StoreAdmin

    admin = _admin(args)
    assert isinstance(admin, StoreAdmin)
    snaps = admin.list_snaps()
    if args.json:
        print(json.dumps(snaps, indent=2))
        return 0
    if not snaps:
        print("no snaps in the store")
        return 0
    print(f"{'Name':<32} {'Revisions':<16} Channels")
    for snap in snaps:
        revs = ",".join(str(r["revision"]) for r in snap["revisions"])
        chans = ", ".join(
            f"{c['channel']}={c['revision']}"
            + (f"({c['architecture']})" if c["architecture"] != "all" else "")
            for c in snap["channels"]
        )
        print(f"{snap['name']:<32} {revs:<16} {chans or '-'}")
    return 0


def cmd_add_assertion(args: argparse.Namespace) -> int:
    from ucimage.store.admin import StoreAdmin
    from ucimage.store.errors import StoreError

    admin = _admin(args)
    assert isinstance(admin, StoreAdmin)
    total = 0
    for name in args.files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {name!r}: {exc}") from exc
        for added in admin.add_assertions(data):
            total += 1
            print(f"added {added['type']} {'/'.join(added['primary-key'])}")
    if total == 0:
        print("nothing added")
    return 0
