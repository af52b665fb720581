"""The KE pull inbox: a kommune's coordinating unit fetches its notices and acknowledges them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from gateway.api.auth import own_inbox
from gateway.api.deps import runtime, wants_xml
from gateway.api.problems import FHIR_JSON, Problem
from gateway.domain.content import load_content
from gateway.domain.model import Organisation
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import ERROR_TEXTS, ReceiptError
from gateway.pipeline.acknowledge import NotInInbox, acknowledge
from gateway.runtime import Runtime
from gateway.store import repository as repo
from mappings.outbound import to_fhir, to_msghead
from mappings.plo.msghead import Party, default_endpoint, to_bytes

#: only the KE's own system: the token's organisation is the one the directory lists for the
#: kommune's KE (gateway/api/auth.py)
router = APIRouter(prefix="/ke/{kommunenr}", tags=["KE inbox"], dependencies=[Depends(own_inbox)])

XML = "application/xml"
KommuneParam = Annotated[str, Path(pattern=r"^[0-9]{4}$", description="kommunenummer")]


class InboxItem(BaseModel):
    id: str
    kind: str
    received_at: dt.datetime
    delivered_at: dt.datetime
    notice: dict[str, Any]


class Inbox(BaseModel):
    kommune_nr: str
    ke_name: str
    items: list[InboxItem]


class AckError(BaseModel):
    code: str = Field(pattern=r"^[TSEX][0-9]{2}$", description="AppRec error code (code list 8221)")
    detail: str | None = Field(default=None, max_length=1000)


class AckRequest(BaseModel):
    status: Literal["OK", "REJECTED"] = "OK"
    errors: list[AckError] = Field(default_factory=list, max_length=20)


class AckResponse(BaseModel):
    id: str
    status: str
    repeated: bool


def _known(rt: Runtime, kommunenr: str) -> None:
    if rt.directory.unit_for(kommunenr) is None:
        raise Problem(404, "unknown-kommune", "No KE is registered for this kommune", kommunenr)


@router.get("/inbox", response_model=Inbox, summary="Notices not yet acknowledged, oldest first")
async def inbox(
    request: Request, kommunenr: KommuneParam, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Inbox:
    rt = runtime(request)
    _known(rt, kommunenr)
    unit = rt.directory.unit_for(kommunenr)
    assert unit is not None
    rows = await rt.db.read(repo.open_inbox, kommunenr, limit)
    return Inbox(
        kommune_nr=kommunenr,
        ke_name=unit.name,
        items=[
            InboxItem(
                id=m.id,
                kind=m.kind,
                received_at=m.received_at,
                delivered_at=delivered_at,
                notice=orjson.loads(m.canonical or "{}"),
            )
            for m, delivered_at in rows
        ],
    )


@router.get(
    "/inbox/{message_id}",
    summary="One notice as a FHIR message Bundle, or as MsgHead XML",
    response_class=Response,
    responses={
        200: {
            "description": "FHIR R4 message Bundle; with `Accept: application/xml` a MsgHead "
            "v1.2 (Dialogmelding 1.1 + BehovForIP) whose MsgId is the gateway message id",
            "content": {FHIR_JSON: {}, XML: {}},
        }
    },
)
async def inbox_item(request: Request, kommunenr: KommuneParam, message_id: str) -> Response:
    rt = runtime(request)
    _known(rt, kommunenr)
    message = await rt.db.read(_in_inbox, kommunenr, message_id)
    if message is None or message.canonical is None:
        raise Problem(404, "not-in-inbox", "No such message in this inbox")
    content = load_content(message.kind, message.canonical)
    unit = rt.directory.unit_for(kommunenr)
    assert unit is not None
    if wants_xml(request.headers.get("accept", "")):
        receiver = Party(Organisation(name=unit.name, her_id=unit.her_id))
        root = to_msghead(content, msg_id=message.id, receiver=receiver)
        return Response(to_bytes(root), media_type=XML)
    ke = Organisation(name=unit.name, her_id=unit.her_id)
    bundle = to_fhir(content, destination=default_endpoint(ke, None))
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)


def _in_inbox(conn: Connection, kommune_nr: str, message_id: str) -> repo.MessageRow | None:
    if repo.inbox_entry(conn, kommune_nr, message_id) is None:
        return None
    return repo.get_message(conn, message_id)


@router.post(
    "/inbox/{message_id}/ack",
    response_model=AckResponse,
    summary="Acknowledge a notice (OK) or reject it with AppRec error codes",
)
async def ack(
    request: Request,
    kommunenr: KommuneParam,
    message_id: str,
    body: Annotated[AckRequest | None, Body()] = None,
) -> AckResponse:
    """Idempotent: acknowledging again answers ``repeated: true`` and changes nothing."""
    rt = runtime(request)
    _known(rt, kommunenr)
    body = body or AckRequest()
    errors: tuple[ReceiptError, ...] = ()
    if body.status == "REJECTED":
        if not body.errors:
            raise Problem(422, "rejection-without-reason", "A rejection needs at least one error")
        unknown = [e.code for e in body.errors if e.code not in ERROR_TEXTS]
        if unknown:
            raise Problem(
                422, "unknown-error-code", "Unknown AppRec error code", ", ".join(unknown)
            )
        errors = tuple(ReceiptError(code=e.code, detail=e.detail) for e in body.errors)
    try:
        result = await acknowledge(rt, kommunenr, message_id, errors)
    except NotInInbox:
        raise Problem(404, "not-in-inbox", "No such message in this inbox") from None
    except repo.StaleStatus:
        # e.g. an operator re-drove it and it waits for consent again: not the KE's to answer
        raise Problem(
            409, "not-acknowledgeable", "The message is not waiting for an acknowledgement now"
        ) from None
    return AckResponse(id=result.message_id, status=result.status.value, repeated=result.repeated)


class TransferState(BaseModel):
    """Where one plan transfer stands, as both kommuner's KEs see it (no person data)."""

    id: str
    plan_id: str | None
    version: int | None
    status: str
    #: the kommune the plan goes to, and the HER-id of the KE that sent it
    to_kommune: str | None
    from_her_id: int | None
    #: what holds it or why it stopped (consent, routing, delivery)
    reason: str | None
    received_at: dt.datetime
    updated_at: dt.datetime


class Transfers(BaseModel):
    kommune_nr: str
    #: plans coming to this kommune
    incoming: list[TransferState]
    #: plans this kommune's KE sent on: ACKNOWLEDGED means the new KE has taken the plan,
    #: and the old one can close it and hand over access
    outgoing: list[TransferState]


@router.get(
    "/transfers", response_model=Transfers, summary="Plan transfers to and from this kommune"
)
async def transfers(
    request: Request, kommunenr: KommuneParam, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Transfers:
    rt = runtime(request)
    _known(rt, kommunenr)
    unit = rt.directory.unit_for(kommunenr)
    assert unit is not None
    incoming, outgoing = await rt.db.read(repo.transfers_of, kommunenr, unit.her_id, limit)
    return Transfers(
        kommune_nr=kommunenr,
        incoming=[_state(m) for m in incoming],
        outgoing=[_state(m) for m in outgoing],
    )


def _state(m: repo.MessageRow) -> TransferState:
    content = load_content(m.kind, m.canonical) if m.canonical else None
    plan = content.plan if isinstance(content, PlanTransfer) else None
    return TransferState(
        id=m.id,
        plan_id=plan.plan_id if plan else None,
        version=plan.version if plan else None,
        status=m.status.value,
        to_kommune=m.recipient_kommune,
        from_her_id=m.sender_her_id,
        reason=m.reason,
        received_at=m.received_at,
        updated_at=m.updated_at,
    )
