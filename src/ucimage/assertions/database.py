"""The trust database: trusted roots, a pool of assertions, chain checks (§3).

Assertions are added without checks (a pool, like snapd's batch); :meth:`Database.check`
verifies one assertion *and the chain it depends on* down to a trusted root.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ucimage.assertions import checks
from ucimage.assertions.codec import Assertion, Ref, decode_stream
from ucimage.assertions.crypto import PublicKey, Signature, sha3_384_digest
from ucimage.assertions.errors import (
    AssertionFormatError,
    AssertionNotFoundError,
    AssertionRevisionError,
    AssertionVerifyError,
)
from ucimage.assertions.types import lookup
from ucimage.run import config_home

STORE_ASSERTIONS_URL = "https://api.snapcraft.io/v2/assertions"

_BUILTIN_TRUSTED = ("canonical-account.assert", "canonical-root-account-key.assert")
_BUILTIN_PREDEFINED = ("generic-account.assert", "generic-models-account-key.assert")


#: shipped beside this module (package-data in pyproject.toml); read as plain files:
#: importlib.resources costs ~4 ms of imports (zipfile among them) for no gain here
_DATA_DIR = Path(__file__).parent / "data"


def _load_package_data(names: Iterable[str]) -> list[Assertion]:
    return list(_decode_package_data(tuple(names)))


@functools.cache
def _decode_package_data(names: tuple[str, ...]) -> tuple[Assertion, ...]:
    # decoded once per process: every Database starts from the built-in roots
    out: list[Assertion] = []
    for name in names:
        out.extend(decode_stream((_DATA_DIR / name).read_bytes()))
    return tuple(out)


def builtin_trusted() -> list[Assertion]:
    """The Canonical root: the ``canonical`` account and the root account-key (snapd's sysdb)."""
    return _load_package_data(_BUILTIN_TRUSTED)


def builtin_predefined() -> list[Assertion]:
    """Predefined but not trusted: the ``generic`` account and its models key."""
    return _load_package_data(_BUILTIN_PREDEFINED)


def trusted_config_dir() -> Path:
    """Extra trusted roots: every ``*.assert`` file here (``$XDG_CONFIG_HOME/ucimage/trusted``)."""
    override = os.environ.get("UCIMAGE_TRUSTED_DIR")
    return Path(override) if override else config_home() / "trusted"


def load_assertion_files(paths: Iterable[str | os.PathLike[str]]) -> list[Assertion]:
    out: list[Assertion] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise AssertionFormatError(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
        try:
            out.extend(decode_stream(data))
        except AssertionFormatError as exc:
            raise AssertionFormatError(f"{os.fspath(path)}: {exc.message}", hint=exc.hint) from None
    return out


def configured_trusted() -> list[Assertion]:
    directory = trusted_config_dir()
    if not directory.is_dir():
        return []
    return load_assertion_files(sorted(directory.glob("*.assert")))


def prerequisites(a: Assertion) -> list[Ref]:
    """What must be present to check *a*: its type's prerequisites, then its signing key.

    These are what a store serves alongside *a* (snapd's fetcher), e.g. for a
    snap-revision: the snap-declaration, the developer account and the signing account-key.
    """
    h = a.headers
    refs: list[Ref] = []
    if a.type == "account-key" or a.type == "account-key-request":
        refs.append(Ref("account", (str(h["account-id"]),)))
    elif a.type == "snap-declaration":
        refs.append(Ref("account", (str(h["publisher-id"]),)))
    elif a.type == "snap-revision":
        refs.append(Ref("snap-declaration", ("16", str(h["snap-id"]))))
        refs.append(Ref("account", (str(h["developer-id"]),)))
    elif a.type == "store":
        refs.append(Ref("account", (str(h["operator-id"]),)))
    elif a.type == "serial" and a.authority_id != h.get("brand-id"):
        refs.append(Ref("model", ("16", str(h["brand-id"]), str(h["model"]))))
    if a.type_info.has_authority and a.sign_key_id:
        refs.append(Ref("account-key", (a.sign_key_id,)))
    seen: set[Ref] = set()
    unique = []
    for ref in refs:
        if ref not in seen:
            seen.add(ref)
            unique.append(ref)
    return unique


def _short(key_id: str) -> str:
    return key_id


def _key_hint(key_id: str) -> str:
    return (
        f"add its account-key assertion (and its account) to the input, e.g. fetched from "
        f"{STORE_ASSERTIONS_URL}/account-key/{key_id}?max-format=1"
    )


class Database:
    """Trusted roots plus a pool of assertions; checks chains to the roots.

    ``trusted`` defaults to the built-in Canonical root plus the files in
    :func:`trusted_config_dir`; ``extra_trusted`` adds more roots (``--trusted``).
    ``now`` fixes the clock for key-expiry checks (tests).
    """

    def __init__(
        self,
        trusted: Iterable[Assertion] | None = None,
        *,
        extra_trusted: Iterable[Assertion] = (),
        predefined: Iterable[Assertion] | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        if trusted is None:
            trusted = [*builtin_trusted(), *configured_trusted()]
        self._trusted: dict[Ref, Assertion] = {}
        self._trusted_accounts: set[str] = set()
        for a in [*trusted, *extra_trusted]:
            self._trusted[a.ref] = a
            if a.type == "account" or a.type == "account-key":
                self._trusted_accounts.add(str(a.headers["account-id"]))
        self._predefined: dict[Ref, Assertion] = {}
        for a in builtin_predefined() if predefined is None else predefined:
            if a.ref not in self._trusted:
                self._predefined[a.ref] = a
        self._pool: dict[Ref, Assertion] = {}
        self._now = now
        self._verified: set[bytes] = set()

    def copy(self) -> Database:
        """A new database with the same roots, predefined assertions, pool and clock."""
        other = Database(self.trusted, predefined=self._predefined.values(), now=self._now)
        other._pool = dict(self._pool)
        return other

    # ---- contents
    @property
    def trusted(self) -> list[Assertion]:
        return list(self._trusted.values())

    def is_trusted(self, a: Assertion) -> bool:
        found = self._trusted.get(a.ref)
        return found is not None and found.encode() == a.encode()

    def is_trusted_account(self, account_id: str) -> bool:
        """Whether *account_id* is a root: its assertions are in the trusted set."""
        return account_id in self._trusted_accounts

    def __iter__(self) -> Iterator[Assertion]:
        """The added assertions (not the trusted or predefined ones), in order of addition."""
        return iter(list(self._pool.values()))

    def __len__(self) -> int:
        return len(self._pool)

    def add(self, a: Assertion) -> None:
        """Add *a* to the pool (no checks; see :meth:`check`).  The highest revision wins."""
        ref = a.ref
        if not a.known_type:
            # no primary key to go by: each distinct unknown assertion is its own entry
            ref = Ref(a.type, (sha3_384_digest(a.content),))
        fixed = self._trusted.get(ref) or self._predefined.get(ref)
        if fixed is not None:
            if fixed.encode() == a.encode():
                return
            raise AssertionVerifyError(
                f"cannot add {ref}: it would replace a trusted or predefined assertion"
            )
        old = self._pool.get(ref)
        if old is not None:
            if old.encode() == a.encode():
                return
            if a.revision <= old.revision:
                why = (
                    f"revision {a.revision} is already the current revision"
                    if a.revision == old.revision
                    else f"revision {a.revision} is older than current revision {old.revision}"
                )
                raise AssertionRevisionError(f"cannot add {ref}: {why}")
        self._pool[ref] = a
        self._verified.clear()

    def add_many(self, assertions: Iterable[Assertion]) -> None:
        for a in assertions:
            self.add(a)

    def add_stream(self, data: bytes) -> list[Assertion]:
        """Decode a stream and add every assertion; returns them."""
        assertions = decode_stream(data)
        self.add_many(assertions)
        return assertions

    def get(self, ref: Ref) -> Assertion | None:
        return self._trusted.get(ref) or self._predefined.get(ref) or self._pool.get(ref)

    def find(self, type: str, /, **primary_key: str) -> Assertion:
        """The assertion of *type* with this primary key (``brand_id=`` means ``brand-id``).

        Raises :class:`AssertionNotFoundError`.
        """
        return self.find_ref(self.ref_for(type, **primary_key))

    def find_ref(self, ref: Ref) -> Assertion:
        found = self.get(ref)
        if found is None:
            raise AssertionNotFoundError(f"{ref.type} {'/'.join(ref.primary_key)} not found")
        return found

    @staticmethod
    def ref_for(type: str, /, **primary_key: str) -> Ref:
        atype = lookup(type)
        if atype is None:
            raise AssertionNotFoundError(f"unknown assertion type {type!r}")
        given = {k.replace("_", "-"): v for k, v in primary_key.items()}
        values = []
        for name in atype.primary_key:
            if name in given:
                values.append(str(given.pop(name)))
            elif name in atype.optional_primary_key:
                values.append(atype.optional_primary_key[name])
            else:
                raise AssertionNotFoundError(
                    f"cannot find {type}: primary key header {name!r} not given"
                )
        if given:
            raise AssertionNotFoundError(
                f"cannot find {type}: {', '.join(sorted(given))} not part of its primary key"
            )
        return Ref(type, tuple(values))

    def select(self, type: str, **headers: str) -> list[Assertion]:
        """Every known assertion of *type* whose headers equal the given values."""
        wanted = {k.replace("_", "-"): v for k, v in headers.items()}
        out = []
        for store in (self._trusted, self._predefined, self._pool):
            for a in store.values():
                if a.type == type and all(a.headers.get(k) == v for k, v in wanted.items()):
                    out.append(a)
        return out

    def account_key(self, key_id: str) -> Assertion | None:
        return self.get(Ref("account-key", (key_id,)))

    # ---- checking
    def _now_time(self) -> dt.datetime:
        return self._now or dt.datetime.now(dt.UTC)

    def check(self, a: Assertion) -> None:
        """Verify *a* and its chain to a trusted root; raises :class:`AssertionVerifyError`."""
        self._check(a, [])

    def check_signature(self, a: Assertion) -> None:
        """Verify only that *a* is signed by a key that chains to a trusted root.

        Unlike :meth:`check`, the type's consistency rules (prerequisites such as a
        snap-revision's snap-declaration) are not required.
        """
        if self.is_trusted(a):
            return
        try:
            key = self._signing_key(a, [a.ref])
            signature = Signature.decode(a.signature)
        except AssertionFormatError as exc:
            raise AssertionVerifyError(exc.message, hint=exc.hint) from None
        key.verify(a.content, signature)

    def verify_all(self) -> list[tuple[Assertion, AssertionVerifyError | None]]:
        """Check every added assertion: (assertion, None) when it verifies, else the error."""
        results: list[tuple[Assertion, AssertionVerifyError | None]] = []
        for a in self:
            try:
                self.check(a)
            except AssertionVerifyError as exc:
                results.append((a, exc))
            else:
                results.append((a, None))
        return results

    def chain(self, a: Assertion) -> list[Assertion]:
        """The non-trusted assertions *a* depends on, dependencies first (for seeds, bundles).

        Raises :class:`AssertionNotFoundError` naming a missing one.
        """
        ordered: list[Assertion] = []
        seen: set[Ref] = set()

        def visit(x: Assertion) -> None:
            for ref in prerequisites(x):
                if ref in seen or ref in self._trusted:
                    continue
                seen.add(ref)
                dep = self.get(ref)
                if dep is None:
                    raise AssertionNotFoundError(
                        f"{ref.type} {'/'.join(ref.primary_key)} needed by {x.ref} not found"
                    )
                visit(dep)
                ordered.append(dep)

        seen.add(a.ref)
        visit(a)
        return ordered

    def _check(self, a: Assertion, stack: list[Ref]) -> None:
        if self.is_trusted(a):
            return
        stamp = a.encode()
        if stamp in self._verified:
            return
        if a.ref in stack:
            raise AssertionVerifyError(f"{a.ref}: circular chain of signatures")
        stack = [*stack, a.ref]
        atype = a.type_info
        if a.format > atype.max_format:
            raise AssertionVerifyError(
                f'proposed "{a.type}" assertion has format {a.format} but '
                f"{atype.max_format} is latest supported"
            )
        try:
            key = self._signing_key(a, stack)
            signature = Signature.decode(a.signature)
        except AssertionFormatError as exc:
            raise AssertionVerifyError(exc.message, hint=exc.hint) from None
        key.verify(a.content, signature)
        self._check_consistency(a, stack)
        self._verified.add(stamp)

    def _signing_key(self, a: Assertion, stack: list[Ref]) -> PublicKey:
        """The public key that must have signed *a*, after checking the key's own chain."""
        h = a.headers
        if not a.type_info.has_authority and a.known_type:
            # self-signed types carry their key
            if a.type == "account-key-request":
                key = PublicKey.decode(a.body)
            else:
                key = PublicKey.decode(str(h["device-key"]))
            if key.id != a.sign_key_id:
                raise AssertionVerifyError(
                    f"{a.type} assertion is not signed by the key it carries"
                )
            return key
        authority = a.authority_id
        if authority is None:
            raise AssertionVerifyError(
                f"cannot verify {a.type} assertion without authority-id (unknown type)"
            )
        key_id = a.sign_key_id
        key_a = self.account_key(key_id)
        if key_a is None:
            raise AssertionVerifyError(
                f"account-key {_short(key_id)} of {authority} not available",
                hint=_key_hint(key_id),
            )
        account = str(key_a.headers["account-id"])
        if account != authority:
            raise AssertionVerifyError(
                f"error finding matching public key for signature: found public key "
                f'"{key_id}" from "{account}" but expected it from: {authority}'
            )
        # the key's own chain
        if key_a.ref == a.ref and not self.is_trusted(key_a):
            raise AssertionVerifyError(
                f"account-key {key_id} of {authority} is self-signed but not a trusted root",
                hint="trust it explicitly: --trusted FILE, or put it in "
                + str(trusted_config_dir()),
            )
        try:
            self._check(key_a, stack)
        except AssertionVerifyError as exc:
            message = exc.message
            if not message.startswith("signing account-key "):
                message = f"signing account-key {key_id} of {authority}: {message}"
            raise AssertionVerifyError(message, hint=exc.hint) from None
        since = checks.parse_rfc3339(str(key_a.headers["since"]))
        until_text = key_a.headers.get("until")
        until = checks.parse_rfc3339(str(until_text)) if until_text else None
        now = self._now_time()
        if now < since or (until is not None and now >= until):
            valid = (
                f"during [{checks.format_rfc3339(since)}, {checks.format_rfc3339(until)})"
                if until is not None
                else f"from {checks.format_rfc3339(since)}"
            )
            raise AssertionVerifyError(
                f'assertion is signed with expired public key "{key_id}" from "{authority}": '
                f"current time is {checks.format_rfc3339(now)} but key is valid {valid}"
            )
        if "constraints" in key_a.headers and not _matches_constraints(
            key_a.headers["constraints"], a.headers
        ):
            raise AssertionVerifyError(
                f'assertion does not match signing constraints for public key "{key_id}" '
                f'from "{authority}"'
            )
        stamp = a.headers.get("timestamp") if atype_has_timestamp(a) else None
        if isinstance(stamp, str):
            try:
                when = checks.parse_rfc3339(stamp)
            except ValueError as exc:  # only unknown types get here unvalidated
                raise AssertionVerifyError(
                    f'"timestamp" header is not a RFC3339 date: {exc}'
                ) from None
            if when < since or (until is not None and when >= until):
                window = f'key valid since "{key_a.headers["since"]}"'
                if until is not None:
                    window += f' until "{until_text}"'
                raise AssertionVerifyError(
                    f'{a.type} assertion timestamp "{stamp}" outside of signing key validity '
                    f"({window})"
                )
        return PublicKey.decode(key_a.body)

    def _require(self, ref: Ref, message: str, stack: list[Ref]) -> Assertion:
        found = self.get(ref)
        if found is None:
            raise AssertionVerifyError(message)
        try:
            self._check(found, stack)
        except AssertionVerifyError as exc:
            raise AssertionVerifyError(f"{ref}: {exc.message}", hint=exc.hint) from None
        return found

    def _check_consistency(self, a: Assertion, stack: list[Ref]) -> None:
        h = a.headers
        authority = a.authority_id or ""
        trusted = self.is_trusted_account(authority)
        if a.type == "account":
            if not trusted:
                raise AssertionVerifyError(
                    f'account assertion for "{h["account-id"]}" is not signed by a directly '
                    f"trusted authority: {authority}"
                )
        elif a.type == "account-key":
            account_id = str(h["account-id"])
            if not trusted:
                raise AssertionVerifyError(
                    f'account-key assertion for "{account_id}" is not signed by a directly '
                    f"trusted authority: {authority}"
                )
            self._require(
                Ref("account", (account_id,)),
                f'account-key assertion for "{account_id}" does not have a matching account '
                f"assertion",
                stack,
            )
            name = h.get("name")
            if name:
                for other in self.select("account-key", account_id=account_id, name=name):
                    if other.ref != a.ref:
                        raise AssertionVerifyError(
                            f'account-key assertion for "{account_id}" with ID '
                            f'"{h["public-key-sha3-384"]}" has the same name "{name}" as '
                            f'existing ID "{other.headers["public-key-sha3-384"]}"'
                        )
        elif a.type == "account-key-request":
            account_id = str(h["account-id"])
            self._require(
                Ref("account", (account_id,)),
                f'account-key-request assertion for "{account_id}" does not have a matching '
                f"account assertion",
                stack,
            )
        elif a.type == "snap-declaration":
            what = f'snap-declaration assertion for "{h["snap-name"]}" (id "{h["snap-id"]}")'
            if not trusted:
                raise AssertionVerifyError(
                    f"{what} is not signed by a directly trusted authority: {authority}"
                )
            publisher = str(h["publisher-id"])
            self._require(
                Ref("account", (publisher,)),
                f"{what} does not have a matching account assertion for the publisher "
                f'"{publisher}"',
                stack,
            )
        elif a.type == "snap-revision":
            self._check_snap_revision(a, stack)
        elif a.type == "serial":
            brand = str(h["brand-id"])
            if authority != brand:
                model = self.get(Ref("model", ("16", brand, str(h["model"]))))
                allowed = model.headers.get("serial-authority", []) if model else []
                if model is None or authority not in allowed:
                    raise AssertionVerifyError(
                        f'serial with authority "{authority}" different from brand "{brand}" '
                        f"without model assertion with serial-authority set to to allow for them"
                    )
        elif a.type == "store":
            store = str(h["store"])
            if not trusted:
                raise AssertionVerifyError(
                    f'store assertion "{store}" is not signed by a directly trusted authority: '
                    f"{authority}"
                )
            operator = str(h["operator-id"])
            self._require(
                Ref("account", (operator,)),
                f'store assertion "{store}" does not have a matching account assertion for the '
                f'operator "{operator}"',
                stack,
            )

    def _check_snap_revision(self, a: Assertion, stack: list[Ref]) -> None:
        h = a.headers
        snap_id = str(h["snap-id"])
        authority = a.authority_id or ""
        provenance = str(h.get("provenance", "global-upload"))
        if provenance == "global-upload" and not self.is_trusted_account(authority):
            raise AssertionVerifyError(
                f'snap-revision assertion for snap id "{snap_id}" is not signed by a store: '
                f"{authority}"
            )
        developer = str(h["developer-id"])
        self._require(
            Ref("account", (developer,)),
            f'snap-revision assertion for snap id "{snap_id}" does not have a matching account '
            f'assertion for the developer "{developer}"',
            stack,
        )
        decl = self._require(
            Ref("snap-declaration", ("16", snap_id)),
            f'snap-revision assertion for snap id "{snap_id}" does not have a matching '
            f"snap-declaration assertion",
            stack,
        )
        if provenance != "global-upload":
            revision = int(h["snap-revision"])
            for ra in decl.headers.get("revision-authority", []):
                if (
                    ra.get("account-id") == authority
                    and provenance in ra.get("provenance", [])
                    and int(ra.get("min-revision", "1")) <= revision
                    and (not ra.get("max-revision") or revision <= int(ra["max-revision"]))
                ):
                    return
            raise AssertionVerifyError(
                f'snap-revision assertion with provenance "{provenance}" for snap id '
                f'"{snap_id}" is not signed by an authorized authority: {authority}'
            )


def atype_has_timestamp(a: Assertion) -> bool:
    return a.type_info.has_timestamp or not a.known_type


def _matches_constraints(constraints: Any, headers: dict[str, Any]) -> bool:
    for entry in constraints if isinstance(constraints, list) else []:
        wanted = entry.get("headers", {}) if isinstance(entry, dict) else {}
        if _match(wanted, headers):
            return True
    return False


def _match(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, str):
        if isinstance(value, list):
            return bool(value) and all(_match(pattern, v) for v in value)
        return isinstance(value, str) and re.fullmatch(pattern, value) is not None
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _match(p, value[k]) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        return any(_match(p, value) for p in pattern)
    return False
