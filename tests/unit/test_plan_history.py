"""The plan-history rule: no older version over a newer one, no second content for a version,
and a previous-version id that matches what was passed on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.plan import Plan
from gateway.plan_history import KnownVersion, conflict
from tests.plan_strategies import plans


def at(plan: Plan, version: int, version_id: str, previous: str | None) -> Plan:
    return plan.model_copy(
        update={"version": version, "version_id": version_id, "previous_version_id": previous}
    )


@pytest.mark.parametrize(
    ("known", "version", "version_id", "previous", "expected"),
    [
        ([], 1, "a", None, None),
        ([], 7, "g", "f", None),  # earlier versions never passed through here
        ([KnownVersion(1, "a")], 2, "b", "a", None),
        ([KnownVersion(1, "a")], 1, "a", None, None),  # the same version again
        ([KnownVersion(2, "b")], 1, "a", None, "version 1 is older than version 2"),
        ([KnownVersion(1, "a"), KnownVersion(3, "c")], 2, "b", "a", "older than version 3"),
        ([KnownVersion(2, "b")], 2, "x", "a", "already passed on under another version id"),
        ([KnownVersion(1, "a")], 2, "b", "zzz", "previous version id does not match version 1"),
        ([KnownVersion(1, "a")], 3, "c", "b", None),  # version 2 was not seen here
    ],
)
def test_conflicts(
    known: list[KnownVersion],
    version: int,
    version_id: str,
    previous: str | None,
    expected: str | None,
) -> None:
    plan = at(
        Plan.model_validate(
            {
                "plan_id": "p",
                "version": 1,
                "version_id": "seed",
                "patient": {
                    "person_id": "13097248022",
                    "id_kind": "FNR",
                    "name": {"given": "Kari", "family": "Nordmann"},
                },
                "responsible": {"name": "KE"},
                "period_start": "2026-01-01",
                "consent": {"given_by": "person", "given_on": "2026-01-01"},
            }
        ),
        version,
        version_id,
        previous,
    )
    why = conflict(known, plan)
    if expected is None:
        assert why is None
    else:
        assert why is not None
        assert expected in why


@given(plans(max_participants=2), st.lists(st.integers(1, 50), max_size=6))
def test_newest_known_never_loses(plan: Plan, versions: list[int]) -> None:
    known = [KnownVersion(v, f"id{v}") for v in versions]
    why = conflict(known, plan)
    if versions and plan.version < max(versions):
        assert why is not None
        assert "older" in why
