"""Simulated peers over real HTTP: a hospital department that sends notices, KE systems
that poll their inbox and acknowledge, and a kommune IP platform that moves plans and updates
them. Used by ``ipgw demo`` and the benchmarks."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections import Counter

import httpx
import orjson

from gateway.demo.samples import (
    HELSE_MORE_OG_ROMSDAL,
    make_notice,
    make_transfer,
    next_version,
)
from gateway.domain.identifiers import PersonIdKind
from gateway.domain.model import NeedNotice, Organisation
from mappings.fhir import systems as sy
from mappings.fhir.notice import notice_to_bundle, patient_identifier
from mappings.fhir.plan import transfer_to_bundle
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.notice import notice_to_msghead

log = logging.getLogger(__name__)

FHIR_JSON = {"content-type": "application/fhir+json"}
XML = {"content-type": "application/xml"}
#: the share of notices the simulated hospital sends as KITH XML (MsgHead) instead of FHIR
XML_SHARE = 0.3
#: the share of notices sent without consent whose consent the hospital sends a bit later
CONSENT_LATER_SHARE = 0.6
#: how the simulated hospital addresses the gateway in MsgHead/Receiver
GATEWAY = Party(Organisation(name="ip-gateway", her_id=99999999))


def _notice(rng: random.Random, kommune_nr: str, flaw: str | None, takes_part: bool) -> NeedNotice:
    notice = make_notice(
        rng, "0301" if flaw == "unknown-kommune" else kommune_nr, with_consent=flaw != "no-consent"
    )
    return notice.model_copy(update={"health_trust_takes_part": takes_part})


def notice_xml_body(
    rng: random.Random, kommune_nr: str, *, flaw: str | None = None, takes_part: bool = False
) -> bytes:
    """The same kind of notice as a hospital EPJ sends it on the health network: MsgHead v1.2
    with Dialogmelding 1.1 and BehovForIP (``flaw`` as for :func:`notice_body`)."""
    notice = _notice(rng, kommune_nr, flaw, takes_part)
    if flaw == "bad-person-id":
        value = notice.patient.person_id
        wrong = value[:-1] + str((int(value[-1]) + 1) % 10)
        # the model would refuse the wrong number, so the flaw goes into the XML itself
        body = to_bytes(notice_to_msghead(notice, msg_id=_guid(rng), receiver=GATEWAY))
        return body.replace(f"<Id>{value}</Id>".encode(), f"<Id>{wrong}</Id>".encode())
    return to_bytes(notice_to_msghead(notice, msg_id=_guid(rng), receiver=GATEWAY))


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def notice_body(
    rng: random.Random, kommune_nr: str, *, flaw: str | None = None, takes_part: bool = False
) -> bytes:
    """A notice as the hospital would send it; ``flaw`` makes the kind of mistake real senders do.

    ``no-consent``: held for consent; ``bad-person-id``: a wrong control digit;
    ``unknown-kommune``: a kommune without a KE in the directory. ``takes_part``: the health
    trust takes part (its own KE gets the notice too).
    """
    notice = _notice(rng, kommune_nr, flaw, takes_part)
    bundle = notice_to_bundle(notice)
    if flaw == "bad-person-id":
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "Patient":
                value = res["identifier"][0]["value"]
                res["identifier"][0]["value"] = value[:-1] + str((int(value[-1]) + 1) % 10)
    return orjson.dumps(bundle)


async def hospital(
    base_url: str,
    kommuner: list[str],
    rate: float,
    sent: Counter[str],
    *,
    seed: int = 1,
    flaws: bool = True,
    takes_part_share: float = 0.0,
    auth: httpx.Auth | None = None,
) -> None:
    """Post notices at ``rate`` per second until cancelled; ``takes_part_share`` of them say
    the health trust takes part."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base_url, timeout=10, auth=auth) as client:
        while True:
            roll = rng.random()
            flaw = None
            if flaws:
                flaw = (
                    "no-consent"
                    if roll < 0.04
                    else "bad-person-id"
                    if roll < 0.07
                    else "unknown-kommune"
                    if roll < 0.09
                    else None
                )
            kommune_nr = rng.choice(kommuner)
            as_xml = rng.random() < XML_SHARE
            # drawn only when asked for: the same seed gives the same notices as before
            takes_part = takes_part_share > 0 and rng.random() < takes_part_share
            try:
                if as_xml:
                    body = notice_xml_body(rng, kommune_nr, flaw=flaw, takes_part=takes_part)
                    r = await client.post("/plo", content=body, headers=XML)
                else:
                    body = notice_body(rng, kommune_nr, flaw=flaw, takes_part=takes_part)
                    r = await client.post("/fhir/$process-message", content=body, headers=FHIR_JSON)
                outcome = "accepted" if r.status_code == 202 else f"refused {r.status_code}"
                sent[f"{'XML' if as_xml else 'FHIR'} {outcome}"] += 1
                if flaw == "no-consent" and not as_xml and rng.random() < CONSENT_LATER_SHARE:
                    # the patient signs a few seconds later: the held notice is released
                    person_id = patient_identifier(orjson.loads(body))
                    if person_id:
                        pending.add(
                            asyncio.create_task(
                                _consent_later(client, person_id, rng.uniform(3, 8), sent)
                            )
                        )
                        pending = {t for t in pending if not t.done()}
            except httpx.HTTPError as e:
                sent[f"error {type(e).__name__}"] += 1
            await asyncio.sleep(1 / rate)


def consent_json(person_id: str, purpose: str) -> dict[str, object]:
    """The person's consent to ``purpose`` (a consent-purpose code) as a FHIR Consent."""
    return {
        "resourceType": "Consent",
        "id": f"demo-{uuid.uuid4()}",
        "status": "active",
        "scope": {"coding": [{"system": sy.CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": sy.LOINC, "code": "59284-0"}]}],
        "patient": {
            "identifier": {"system": sy.PERSON_ID_SYSTEMS[PersonIdKind.FNR], "value": person_id}
        },
        "dateTime": dt.date.today().isoformat(),
        "policyRule": {"coding": [{"system": sy.ACT_CODE_SYSTEM, "code": "OPTIN"}]},
        "provision": {"purpose": [{"system": sy.CONSENT_PURPOSE_SYSTEM, "code": purpose}]},
    }


async def _consent_later(
    client: httpx.AsyncClient, person_id: str, delay: float, sent: Counter[str]
) -> None:
    await asyncio.sleep(delay)
    consent = consent_json(person_id, "need-notice")
    try:
        r = await client.post("/fhir/Consent", content=orjson.dumps(consent), headers=FHIR_JSON)
        sent["consent sent later" if r.status_code == 201 else f"consent {r.status_code}"] += 1
    except httpx.HTTPError as e:
        sent[f"error {type(e).__name__}"] += 1


async def coordinating_unit(
    base_url: str,
    kommune_nr: str,
    acked: Counter[str],
    *,
    interval: float = 1.0,
    auth: httpx.Auth | None = None,
) -> None:
    """Poll the KE inbox and acknowledge every notice, until cancelled."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10, auth=auth) as client:
        while True:
            try:
                r = await client.get(f"/ke/{kommune_nr}/inbox", params={"limit": 100})
                r.raise_for_status()
                for item in r.json()["items"]:
                    a = await client.post(f"/ke/{kommune_nr}/inbox/{item['id']}/ack")
                    if a.status_code == 200:
                        acked[kommune_nr] += 1
            except httpx.HTTPError as e:
                log.debug("KE %s: %s", kommune_nr, type(e).__name__)
            await asyncio.sleep(interval)


async def plan_platform(
    base_url: str,
    moves: list[tuple[str, str]],
    sent: Counter[str],
    *,
    interval: float = 6.0,
    seed: int = 2,
    auth: httpx.Auth | None = None,
) -> None:
    """A kommune's IP platform, until cancelled: every ``interval`` seconds a person moves
    (old, new) with their plan, in which a doctor at Helse Møre og Romsdal takes part; the
    person consents to the transfer and to sharing with the health trust. A few seconds later
    the new kommune's platform sends the plan's next version as an update, which goes to the
    trust only."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    async with httpx.AsyncClient(base_url=base_url, timeout=10, auth=auth) as client:
        while True:
            old, new = rng.choice(moves)
            moved = make_transfer(rng, old, new, health_trust=HELSE_MORE_OG_ROMSDAL)
            person_id = moved.plan.patient.person_id
            try:
                for purpose in ("transfer", "share-hf"):
                    await client.post(
                        "/fhir/Consent",
                        content=orjson.dumps(consent_json(person_id, purpose)),
                        headers=FHIR_JSON,
                    )
                r = await client.post(
                    "/fhir/$process-message",
                    content=orjson.dumps(transfer_to_bundle(moved)),
                    headers=FHIR_JSON,
                )
                sent[f"plan transfer {_outcome(r)}"] += 1
                await asyncio.sleep(interval / 2)
                update = next_version(rng, moved, None, health_trust=HELSE_MORE_OG_ROMSDAL)
                r = await client.post(
                    "/fhir/$process-message",
                    content=orjson.dumps(transfer_to_bundle(update)),
                    headers=FHIR_JSON,
                )
                sent[f"plan update {_outcome(r)}"] += 1
            except httpx.HTTPError as e:
                sent[f"error {type(e).__name__}"] += 1
            await asyncio.sleep(interval / 2)


def _outcome(r: httpx.Response) -> str:
    return "accepted" if r.status_code == 202 else f"refused {r.status_code}"
