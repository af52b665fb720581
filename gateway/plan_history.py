"""Plan history: which versions of a plan the gateway has passed on, and the rule that keeps
an older version from landing over a newer one.

Every version a message carried is recorded (its content is that message's canonical form).
A receiver can tell an old update from a new one by the version number and the previous
version's id each message carries; the gateway refuses, with a reason, what would go back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.domain.plan import Plan
from gateway.domain.receipt import ReceiptError
from gateway.store import repository as repo


@dataclass(frozen=True)
class KnownVersion:
    version: int
    version_id: str


def conflict(known: Sequence[KnownVersion], plan: Plan) -> str | None:
    """Why ``plan`` may not be passed on after the ``known`` versions; None when it may.

    The same version again (a transfer of the version an update already carried) is fine.
    """
    if any(k.version == plan.version and k.version_id == plan.version_id for k in known):
        return None
    newest = max((k.version for k in known), default=0)
    if plan.version < newest:
        return f"version {plan.version} is older than version {newest}, already passed on"
    if any(k.version == plan.version for k in known):
        return f"version {plan.version} was already passed on under another version id"
    previous = [k.version_id for k in known if k.version == plan.version - 1]
    if previous and plan.previous_version_id not in previous:
        return (
            f"the previous version id does not match version {plan.version - 1}, already passed on"
        )
    return None


def refusal(conn: Connection, plan: Plan) -> ReceiptError | None:
    """The receipt error for a version that would go back, or None."""
    known = [KnownVersion(v, i) for v, i in repo.plan_versions_of(conn, plan.plan_id)]
    why = conflict(known, plan)
    return ReceiptError(code="X99", detail=f"plan version: {why}") if why else None


def record(conn: Connection, plan: Plan, message_id: str) -> None:
    repo.add_plan_version(conn, plan.plan_id, plan.version, plan.version_id, message_id)
