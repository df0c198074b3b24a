"""``--validation enforce``: the model's validation sets constrain the seeded snaps.

For each validation set the model lists with mode ``enforce`` (or
``prefer-enforce``), the validation-set assertion is fetched from the store
(at its pinned ``sequence``, else at the latest sequence, asked with
``?sequence=latest`` like snapd) and verified.  Its snaps then pin revisions
(``revision``), must be seeded (``presence: required``, the default) or must
not be (``presence: invalid``).  Violations are errors before any download.
The sets are recorded in ``seed.manifest`` (``account/name=SEQ``) and stored
with the model's assertions in the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ucimage.build.plan import PlannedSnap
from ucimage.errors import UcimageError

if TYPE_CHECKING:
    from ucimage.build.pipeline import ImageBuild


class ValidationSetError(UcimageError):
    code = "validation-set"


@dataclass(frozen=True)
class ValidationSetRule:
    account: str
    name: str
    sequence: int
    pinned: bool
    #: snap name -> (presence, revision or None)
    snaps: dict[str, tuple[str, int | None]]

    @property
    def key(self) -> str:
        return f"{self.account}/{self.name}"


def enforced_sets(build: ImageBuild) -> list[dict[str, Any]]:
    """The model's validation sets that --validation enforce applies."""
    if build.opts.validation != "enforce":
        return []
    info = build.info
    out = []
    for vs in info.validation_sets:
        mode = str(vs.get("mode", "enforce"))
        if mode not in ("enforce", "prefer-enforce"):
            continue
        out.append(
            {
                "account": str(vs.get("account-id") or info.brand_id),
                "name": str(vs.get("name")),
                "sequence": vs.get("sequence"),
            }
        )
    return out


def fetch_rules(build: ImageBuild, client: Any, db: Any) -> list[ValidationSetRule]:
    """Fetch and verify the enforced validation sets: at the pinned sequence, or at the
    latest sequence the store has (like snapd's prepare-image since 2.60)."""
    rules = []
    adir = build.workdir / "assertions"
    adir.mkdir(exist_ok=True)
    saved = build.state.results.setdefault("model_assertions", [])
    for vs in enforced_sets(build):
        pinned = vs["sequence"] is not None
        where = f"sequence {vs['sequence']}" if pinned else "the latest sequence"
        try:
            sequence = int(vs["sequence"]) if pinned else None
            assertion = client.get_sequence_assertion(
                "validation-set", ("16", vs["account"], vs["name"]), sequence
            )
            client.fetch_chain(assertion, db)
            db.check(assertion)
        except (UcimageError, ValueError) as exc:
            message = exc.message if isinstance(exc, UcimageError) else str(exc)
            raise ValidationSetError(
                f"cannot get validation set {vs['account']}/{vs['name']} at {where}: {message}",
                hint=getattr(exc, "hint", None),
            ) from exc
        path = adir / (",".join(assertion.primary_key) + ".validation-set")
        path.write_bytes(assertion.encode())
        saved.append(
            {
                "type": "validation-set",
                "primary_key": list(assertion.primary_key),
                "file": str(path),
            }
        )
        snaps: dict[str, tuple[str, int | None]] = {}
        for entry in assertion.header("snaps") or []:
            rev = entry.get("revision")
            snaps[str(entry["name"])] = (
                str(entry.get("presence", "required")),
                int(rev) if rev is not None else None,
            )
        seq = int(assertion.primary_key[-1])
        rules.append(ValidationSetRule(vs["account"], vs["name"], seq, pinned, snaps))
    build.state.results["validation_sets"] = [
        {"account": r.account, "name": r.name, "sequence": r.sequence, "pinned": r.pinned,
         "governed": sorted(n for n, (p, rev) in r.snaps.items() if rev is not None)}
        for r in rules
    ]  # fmt: skip
    return rules


def apply_rules(rules: list[ValidationSetRule], planned: list[PlannedSnap]) -> list[PlannedSnap]:
    """Pin revisions and check presence; raise on any conflict."""
    names = {p.name for p in planned}
    out = list(planned)
    problems = []
    for rule in rules:
        for name, (presence, revision) in rule.snaps.items():
            if presence == "invalid":
                if name in names:
                    problems.append(f"snap {name} is invalid in validation set {rule.key}")
                continue
            if presence == "required" and name not in names:
                problems.append(f"validation set {rule.key} requires snap {name}")
                continue
            if revision is None:
                continue
            for i, p in enumerate(out):
                if p.name != name:
                    continue
                if p.source == "local":
                    problems.append(
                        f"validation set {rule.key} pins {name} to revision {revision}; "
                        "a local file cannot satisfy it"
                    )
                elif p.revision is not None and p.revision != revision:
                    problems.append(
                        f"snap {name} revision {p.revision} conflicts with validation set "
                        f"{rule.key} (revision {revision})"
                    )
                else:
                    out[i] = replace(p, revision=revision)
    if problems:
        raise ValidationSetError(
            "the snaps do not satisfy the model's validation sets: " + "; ".join(problems),
            hint="fix --snap/--revision, or build with --validation ignore",
        )
    return out
