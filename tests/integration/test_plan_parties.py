"""Plan updates reach the plan's other parties (issue 6, "a coordinator change reaches every
entitled participant"): over the real broker and store, with the health trusts on simulated
platforms over HTTP -- one on a FHIR platform, one on the NHN message service (IP-XML).

The kommune that keeps the plan sends version 2, where the coordinator is replaced and the plan
names the new one. Each trust gets its own copy: the trust whose participant the § 19 h consent
names gets the whole plan, the other gets it without the confidential parts, and the update is
answered once both have acknowledged. Without the person's consent to sharing with the health
trust nothing reaches either trust until that consent arrives.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.config import Settings
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.demo.samples import make_transfer
from gateway.domain.model import Organisation
from gateway.domain.plan import (
    Coordinator,
    Participant,
    ParticipantKind,
    PlanEvent,
    PlanTransfer,
)
from gateway.pipeline import recovery
from gateway.runtime import Runtime
from gateway.store import repository as repo
from mappings.fhir.plan import bundle_to_transfer, transfer_to_bundle
from mappings.fhir.plan_status import bundle_to_status
from mappings.plo.plan import msghead_to_transfer
from mappings.plo.plan_status import msghead_to_status
from mappings.plo.xmlsafe import parse_xml
from tests.integration.platforms import Platforms, ke, trust, with_directory
from tests.integration.test_pipeline import post, wait_status
from tests.integration.test_plan_transfer import plan_consent

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
#: two health trusts (real orgnr, fictitious HER-ids)
HMR = Organisation(name="Helse Møre og Romsdal HF", her_id=99_100_001, orgnr="983974899")
STO = Organisation(name="St. Olavs hospital HF", her_id=99_100_002, orgnr="883974832")
#: a trust taken out of the directory's routing (active = false)
HNT = Organisation(name="Helse Nord-Trøndelag HF", her_id=99_100_003, orgnr="983974791")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, platforms: Platforms) -> Settings:
    fhir, nhn = platforms
    entries = (
        ke("1505", "nhn_msh", nhn.base_url)
        + ke("1508", "fhir_rest", fhir.base_url)
        + trust(HMR, "fhir_rest", fhir.base_url)
        + trust(STO, "nhn_msh", nhn.base_url)
        + trust(HNT, "fhir_rest", fhir.base_url, active=False)
    )
    return with_directory(settings, tmp_path, entries)


def share_hf_consent(t: PlanTransfer, consent_id: str) -> dict[str, Any]:
    """The person's consent to sharing the plan with the health trust."""
    return plan_consent(t, consent_id, "share-hf")


def plan_update(rng: random.Random, version: int, base: PlanTransfer | None) -> PlanTransfer:
    """A plan kept by 1505, with a participant from each trust; from version 2 on the
    coordinator is replaced by a new one the plan names. Only HMR's participant is named in
    the § 19 h sharing consent."""
    t = make_transfer(
        rng,
        "1505",
        "1505",
        plan_id=base.plan.plan_id if base else None,
        version=version,
        previous_version_id=base.plan.version_id if base else None,
        person=base.plan.patient if base else None,
    )
    plan = t.plan
    people = (
        *plan.participants,
        Participant(
            key="hf1",
            kind=ParticipantKind.PROFESSIONAL,
            name="Lege i spesialisthelsetjenesten",
            role="lege",
            organisation=HMR,
            contribution="Oppfølging av behandlingen",
        ),
        Participant(
            key="hf2",
            kind=ParticipantKind.PROFESSIONAL,
            name="Fysioterapeut på sykehuset",
            organisation=STO,
        ),
    )
    coordinator = Coordinator(participant="p2")
    if version > 1:
        people = (
            *people,
            Participant(
                key="p3",
                kind=ParticipantKind.PROFESSIONAL,
                name="Ny koordinator i kommunen",
                role="koordinator",
                organisation=plan.responsible,
            ),
        )
        coordinator = Coordinator(participant="p3")
    sharing = plan.consent.model_dump()
    plan = plan.model_validate(
        {
            **plan.model_dump(),
            "participants": [p.model_dump() for p in people],
            "coordinator": coordinator.model_dump(),
            "sharing": {
                "given_by": sharing["given_by"],
                "given_on": sharing["given_on"],
                "participants": ["p2", "hf1"],
            },
        }
    )
    return t.model_copy(update={"plan": plan, "new_kommune_nr": None})


async def send(client: httpx.AsyncClient, t: PlanTransfer) -> str:
    r = await post(client, orjson.dumps(transfer_to_bundle(t)))
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def consent_to_sharing(client: httpx.AsyncClient, t: PlanTransfer, cid: str) -> None:
    r = await client.post(
        "/fhir/Consent", content=orjson.dumps(share_hf_consent(t, cid)), headers=FHIR
    )
    assert r.status_code == 201, r.text


def copies(view: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["recipient_her_id"]: p for p in view["parties"]}


async def test_a_coordinator_change_reaches_every_entitled_party(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    fhir, nhn = platforms
    rng = random.Random(81)
    v1 = plan_update(rng, 1, None)
    await consent_to_sharing(client, v1, "share-hf-81")
    first = await send(client, v1)
    await wait_status(client, first, {"ACKNOWLEDGED"}, timeout=20)

    v2 = plan_update(rng, 2, v1)
    update = await send(client, v2)
    view = await wait_status(client, update, {"ACKNOWLEDGED"}, timeout=20)
    parties = copies(view)
    assert set(parties) == {HMR.her_id, STO.her_id}
    assert {p["status"] for p in parties.values()} == {"ACKNOWLEDGED"}
    receipt = (await client.get(f"/receipts/{update}")).json()
    assert receipt["status"]["V"] == "1"

    # the trust named in the § 19 h consent (FHIR platform): the whole plan, new coordinator
    bundle = fhir.bundle(parties[HMR.her_id]["id"])
    assert bundle is not None
    at_hmr = bundle_to_transfer(bundle, allow_synthetic_ids=True).plan
    assert at_hmr == v2.plan
    assert at_hmr.coordinator is not None
    assert at_hmr.coordinator.participant == "p3"

    # the other trust (NHN, IP-XML): the new coordinator, who takes part, its own part; none
    # of the person's needs and goals, the others' measures or contributions
    kept = nhn.kept(STO.her_id)[parties[STO.her_id]["id"]]
    at_sto, _ = msghead_to_transfer(parse_xml(kept, max_bytes=4_000_000), allow_synthetic_ids=True)
    plan = at_sto.plan
    assert (plan.plan_id, plan.version, plan.previous_version_id) == (
        v2.plan.plan_id,
        2,
        v1.plan.version_id,
    )
    assert plan.coordinator == v2.plan.coordinator
    assert [p.key for p in plan.participants] == [p.key for p in v2.plan.participants]
    assert plan.needs == ()
    assert plan.goals == ()
    assert plan.measures == ()
    assert all(p.contribution is None for p in plan.participants)
    for need in v2.plan.needs:
        assert need.encode() not in kept
    left_out = [e["detail"] for e in view["events"] if STO.name in (e["detail"] or "")]
    assert any("left out" in d and "needs" in d for d in left_out), left_out

    # the kommune that sent the update gets nothing back but its receipt
    assert update not in nhn.kept(99_001_505)
    assert (await client.get("/ke/1505/transfers")).json()["incoming"] == []


async def test_without_consent_to_share_with_the_trust_nothing_reaches_it(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    fhir, nhn = platforms
    v1 = plan_update(random.Random(82), 1, None)
    update = await send(client, v1)
    view = await wait_status(client, update, {"DELIVERED"})
    for _ in range(40):
        view = (await client.get(f"/messages/{update}")).json()
        if {p["status"] for p in view["parties"]} == {"HELD_CONSENT"}:
            break
        await wait_status(client, update, {"DELIVERED"})
    parties = copies(view)
    assert {p["status"] for p in parties.values()} == {"HELD_CONSENT"}, parties
    assert all("share the plan with the health trust" in p["reason"] for p in parties.values())
    assert fhir.bundle(parties[HMR.her_id]["id"]) is None
    assert parties[STO.her_id]["id"] not in nhn.kept(STO.her_id)
    assert (await client.get(f"/receipts/{update}")).status_code == 404

    # the consent arrives: each copy is released and delivered, and the update answered
    await consent_to_sharing(client, v1, "share-hf-82")
    view = await wait_status(client, update, {"ACKNOWLEDGED"}, timeout=20)
    assert {p["status"] for p in view["parties"]} == {"ACKNOWLEDGED"}
    assert fhir.bundle(parties[HMR.her_id]["id"]) is not None


async def test_a_party_that_refuses_makes_the_update_rejected_with_its_reason(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    fhir, _ = platforms
    v1 = plan_update(random.Random(83), 1, None)
    await consent_to_sharing(client, v1, "share-hf-83")
    fhir.set_mode("reject", issue="invalid", status=422)
    try:
        update = await send(client, v1)
        view = await wait_status(client, update, {"REJECTED"}, timeout=20)
    finally:
        fhir.set_mode("ok")
    parties = copies(view)
    assert parties[HMR.her_id]["status"] == "REJECTED"
    assert parties[STO.her_id]["status"] == "ACKNOWLEDGED"
    receipt = (await client.get(f"/receipts/{update}")).json()
    assert receipt["status"]["V"] != "1"
    assert any(HMR.name in e.get("OT", "") for e in receipt["error"]), receipt


async def test_withdrawing_consent_to_share_tells_each_trust_that_has_the_plan(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    fhir, nhn = platforms
    v1 = plan_update(random.Random(84), 1, None)
    await consent_to_sharing(client, v1, "share-hf-84")
    update = await send(client, v1)
    view = await wait_status(client, update, {"ACKNOWLEDGED"}, timeout=20)
    parties = copies(view)

    withdrawal = share_hf_consent(v1, "share-hf-84") | {
        "status": "inactive",
        "meta": {"lastUpdated": "2026-11-22T10:00:00+00:00"},
    }
    r = await client.post("/fhir/Consent", content=orjson.dumps(withdrawal), headers=FHIR)
    assert r.status_code in (200, 201), r.text

    told: dict[int, dict[str, Any]] = {}
    for _ in range(300):
        told = {}
        for her_id, copy in parties.items():
            child = (await client.get(f"/messages/{copy['id']}")).json()
            for p in child["parties"]:
                if p["kind"] == "plan-status" and p["status"] == "ACKNOWLEDGED":
                    told[her_id] = p
        if len(told) == 2:
            break
        await asyncio.sleep(0.05)
    assert set(told) == {HMR.her_id, STO.her_id}, told
    bundle = fhir.bundle(told[HMR.her_id]["id"])
    assert bundle is not None
    at_hmr = bundle_to_status(bundle, allow_synthetic_ids=True)
    assert (at_hmr.event, at_hmr.plan_id) == (PlanEvent.CONSENT_WITHDRAWN, v1.plan.plan_id)
    root = parse_xml(nhn.kept(STO.her_id)[told[STO.her_id]["id"]], max_bytes=1_000_000)
    at_sto = msghead_to_status(root, allow_synthetic_ids=True)
    assert (at_sto.event, at_sto.regarding) == (
        PlanEvent.CONSENT_WITHDRAWN,
        parties[STO.her_id]["id"],
    )
    # the kommune that keeps the plan sent it: it is not told of its own plan
    assert (await client.get(f"/messages/{update}")).json()["status"] == "ACKNOWLEDGED"


async def test_a_copy_with_no_active_trust_waits_for_the_operator_then_answers_the_update(
    client: httpx.AsyncClient,
) -> None:
    v1 = plan_update(random.Random(85), 1, None)
    plan = v1.plan.model_validate(
        {
            **v1.plan.model_dump(),
            "participants": [
                *(p.model_dump() for p in v1.plan.participants),
                Participant(
                    key="hf3", kind=ParticipantKind.OTHER, name="Sosionom", organisation=HNT
                ).model_dump(),
            ],
        }
    )
    v1 = v1.model_copy(update={"plan": plan})
    await consent_to_sharing(client, v1, "share-hf-85")
    update = await send(client, v1)
    for _ in range(300):
        view = (await client.get(f"/messages/{update}")).json()
        parties = copies(view)
        if parties.get(HNT.her_id, {}).get("status") == "DEAD" and {
            parties[h]["status"] for h in (HMR.her_id, STO.her_id)
        } == {"ACKNOWLEDGED"}:
            break
        await asyncio.sleep(0.05)
    assert parties[HNT.her_id]["status"] == "DEAD", parties
    assert parties[HNT.her_id]["reason"].startswith("E21")
    assert view["status"] == "DELIVERED"  # not answered while a party may still get it

    r = await client.post(
        f"/messages/{parties[HNT.her_id]['id']}/discard",
        json={"reason": "the trust no longer takes part"},
        headers={"X-Operator": "ops1"},
    )
    assert r.status_code == 200, r.text
    view = await wait_status(client, update, {"REJECTED"})
    receipt = (await client.get(f"/receipts/{update}")).json()
    assert [e["V"] for e in receipt["error"]] == ["E21"]
    assert HNT.name in receipt["error"][0]["OT"]


async def test_a_copy_left_validated_by_a_crash_is_advanced_by_recovery_not_refused(
    gateway: tuple[httpx.AsyncClient, Runtime],
) -> None:
    """A copy is made and advanced in one transaction; if the process stopped in between,
    recovery finds it VALIDATED and sends it through the pipeline stage, which must take its
    canonical form (it has no body of its own) instead of refusing an empty body."""
    client, rt = gateway
    v1 = plan_update(random.Random(86), 1, None)
    await consent_to_sharing(client, v1, "share-hf-86")
    update = await send(client, v1)
    await wait_status(client, update, {"ACKNOWLEDGED"}, timeout=20)
    parent = await rt.db.read(repo.get_message, update)
    assert parent is not None
    copy = await rt.db.write(
        lambda conn: repo.insert_child(
            conn,
            parent,
            canonical=v1.model_dump_json(),
            recipient_her_id=HMR.her_id,
            detail="made, then the process stopped (test)",
            actor="test",
        )
    )
    assert await recovery.requeue(rt) >= 1
    rt.committed()
    view = await wait_status(client, copy.id, {"ACKNOWLEDGED"}, timeout=20)
    assert view["recipient_her_id"] == HMR.her_id
