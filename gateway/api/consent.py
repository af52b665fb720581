"""FHIR Consent endpoints: consents that do not travel inside a message, and the look-up.

``POST /fhir/Consent`` files a consent (or a refusal, or a withdrawal) and at once looks again
at the person's undelivered messages: held ones go on, stopped ones stop. ``GET /fhir/Consent``
(and ``POST /fhir/Consent/_search``, which keeps the person id out of the URL and so out of
every access log on the way) lists the consents on record for one person.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from gateway.api.auth import Sender, actor_of, needs
from gateway.api.deps import Turned, runtime, take_body
from gateway.api.problems import FHIR_JSON, Problem, operation_outcome, receipt_issues
from gateway.auth.tokens import SCOPE_CONSENT_READ, Caller
from gateway.domain.consent import ConsentRecord
from gateway.domain.identifiers import InvalidIdentifier, PersonIdKind, parse_person_id
from gateway.domain.model import MessageKind
from gateway.domain.receipt import Receipt, ReceiptError, Refused
from gateway.pipeline import consents
from gateway.pipeline.ingest import store_refused
from gateway.runtime import Runtime
from gateway.store import repository as repo
from mappings.fhir import systems as sy
from mappings.fhir.consent import read_consent, write_consent

router = APIRouter(prefix="/fhir", tags=["FHIR"])

ConsentReader = Annotated[Caller, Depends(needs(SCOPE_CONSENT_READ))]

_JSON_TYPES = ("application/fhir+json", "application/json")


@router.post(
    "/Consent",
    status_code=201,
    summary="File a Consent (given, refused or withdrawn) for a person",
    responses={
        201: {"description": "Filed; the body is the Consent as the registry holds it"},
        400: {"description": "Refused (kept as REJECTED), OperationOutcome with the code"},
    },
)
async def post_consent(request: Request, _: Sender) -> JSONResponse:
    """``X-Messages-Moved``: how many of the person's waiting messages the consent moved on
    (released, or stopped by a refusal or withdrawal)."""
    rt = runtime(request)
    got = await take_body(request, rt, _JSON_TYPES, kind=MessageKind.CONSENT)
    if isinstance(got, Turned):
        return _outcome(got.status, got.receipt)
    body, content_type, who = got.body, got.content_type, got.caller
    try:
        resource = orjson.loads(body)
        person_id, record = read_consent(
            resource, allow_synthetic_ids=rt.settings.accept_synthetic_ids, now=rt.clock()
        )
    except orjson.JSONDecodeError:
        error = ReceiptError(code="T01", detail="body is not well-formed JSON")
        return await _refused(rt, body, content_type, who, 400, (error,))
    except Refused as r:
        return await _refused(rt, body, content_type, who, 400, r.errors)
    pseudonym = rt.pseudonymize(person_id)
    moved = await rt.db.write(consents.file_consent, rt, pseudonym, record, f"api {who}")
    rt.committed()
    kind = parse_person_id(person_id, allow_synthetic=True).kind
    return JSONResponse(
        write_consent(person_id, kind, record),
        status_code=201,
        media_type=FHIR_JSON,
        headers={"X-Messages-Moved": str(moved)},
    )


async def _refused(
    rt: Runtime,
    body: bytes,
    content_type: str,
    who: str,
    status: int,
    errors: tuple[ReceiptError, ...],
) -> JSONResponse:
    receipt = await store_refused(rt, body, content_type, who, errors, kind=MessageKind.CONSENT)
    return _outcome(status, receipt)


def _outcome(status: int, receipt: Receipt) -> JSONResponse:
    message_id = str(receipt.gateway_message_id)
    return operation_outcome(
        status,
        receipt_issues(receipt.errors),
        resource_id=message_id,
        headers={"X-Message-Id": message_id},
    )


@router.get("/Consent", summary="The consents on record for a person (searchset Bundle)")
async def search_consents(
    request: Request,
    caller: ConsentReader,
    patient: Annotated[
        str | None,
        Query(
            description="`system|value` of a person id; `POST /fhir/Consent/_search` keeps "
            "it out of the URL"
        ),
    ] = None,
    patient_identifier: Annotated[str | None, Query(alias="patient.identifier")] = None,
) -> JSONResponse:
    return await _search(request, caller, patient or patient_identifier)


@router.post("/Consent/_search", summary="The consents on record for a person (form search)")
async def search_consents_form(
    request: Request,
    caller: ConsentReader,
    patient: Annotated[str | None, Form()] = None,
    patient_identifier: Annotated[str | None, Form(alias="patient.identifier")] = None,
) -> JSONResponse:
    return await _search(request, caller, patient or patient_identifier)


async def _search(request: Request, caller: Caller, token: str | None) -> JSONResponse:
    """Authorised callers only (``ipgw/consent.read``); each look is on the audit log, with
    the pseudonym's start for the person (never the id)."""
    rt = runtime(request)
    person_id, kind = _person(token, rt.settings.accept_synthetic_ids)
    pseudonym = rt.pseudonymize(person_id)
    records = await rt.db.write(_looked_up, pseudonym, actor_of(caller))
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": write_consent(person_id, kind, r)}
        for r in records
    ]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return JSONResponse(bundle, media_type=FHIR_JSON)


def _looked_up(conn: Connection, pseudonym: str, actor: str) -> list[ConsentRecord]:
    repo.audit(conn, actor, "read-consents", repo.person_target(pseudonym), None)
    return _records(conn, pseudonym)


def _records(conn: Connection, pseudonym: str) -> list[ConsentRecord]:
    return repo.consents_for(conn, pseudonym)


def _person(token: str | None, allow_synthetic: bool) -> tuple[str, PersonIdKind]:
    """``system|value`` -> the checked person id; the error never repeats the value."""
    if not token or "|" not in token:
        raise Problem(400, "patient-missing", "Search needs patient=system|value")
    system, _, value = token.partition("|")
    declared = sy.PERSON_ID_KINDS.get(system)
    if declared is None:
        raise Problem(400, "patient-system", "Unknown person-id system", system[:100])
    try:
        pid = parse_person_id(value, allow_synthetic=allow_synthetic)
    except InvalidIdentifier as e:
        raise Problem(400, "patient-invalid", "Invalid person id", e.reason) from None
    if pid.kind is not declared:
        raise Problem(400, "patient-invalid", "Invalid person id", "system and number disagree")
    return pid.value, pid.kind
