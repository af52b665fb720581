"""KITH XML endpoint: a MsgHead (a need-for-IP notice as Dialogmelding 1.1 + BehovForIP, a
plan as IP_PLAN, a consent statement as IP_SAMTYKKE)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.auth import Sender, spoofed
from gateway.api.deps import Turned, runtime, take_body
from gateway.domain.model import Organisation
from gateway.domain.receipt import Receipt, ReceiptStatus
from gateway.pipeline.ingest import ConsentFiled, IngestRefused, SenderSpoofed, accept_plo
from gateway.pipeline.receipts import XML_TYPES
from gateway.runtime import Runtime
from gateway.store import repository as repo
from mappings.plo.apprec import receipt_to_apprec

router = APIRouter(tags=["KITH XML"])

APPREC_XML = "application/xml"


@router.post(
    "/plo",
    status_code=202,
    summary="Send a MsgHead v1.2 document (need-for-IP notice)",
    response_class=Response,
    responses={
        201: {
            "description": "A consent statement (IP_SAMTYKKE) filed: AppRec OK; "
            "X-Messages-Moved: the person's waiting messages it moved on",
            "content": {APPREC_XML: {}},
        },
        202: {"description": "Stored and queued; X-Message-Id is the gateway message id"},
        400: {
            "description": "Refused (kept as REJECTED): a rejecting AppRec 1.1 with the 8221 code",
            "content": {APPREC_XML: {}},
        },
        401: {"description": "No valid bearer token (the problem code says why)"},
        403: {
            "description": "The MsgHead sender is not the token's organisation (kept as "
            "REJECTED; AppRec X99 sender-spoofed), or scope-missing",
            "content": {APPREC_XML: {}},
        },
        413: {"description": "Body too large (AppRec T99)", "content": {APPREC_XML: {}}},
        415: {"description": "Not XML (AppRec T10)", "content": {APPREC_XML: {}}},
    },
)
async def post_plo(request: Request, caller: Sender) -> Response:
    """The MsgHead is parsed (no DTDs, no entities, no network), checked against the official
    KITH XSDs and read at once; a refusal answers with the rejecting AppRec right away. What
    is accepted is answered later with the KE's AppRec at ``GET /receipts/{id}`` (send
    ``Accept: application/xml``). A re-sent message (same sender and MsgId) is not processed
    twice: the answer names the first message's id.
    """
    rt = runtime(request)
    got = await take_body(request, rt, sorted(XML_TYPES))
    if isinstance(got, Turned):
        return _apprec(got.status, got.receipt)
    try:
        accepted = await accept_plo(
            rt, got.body, got.content_type, got.caller, caller.organisations
        )
    except SenderSpoofed as e:
        await spoofed(request, caller)
        return _apprec(403, e.receipt)
    except IngestRefused as e:
        return _apprec(400, e.receipt)
    if isinstance(accepted, ConsentFiled):
        return _consent_filed(rt, accepted)
    headers = _headers(accepted.message_id)
    if accepted.duplicate:
        headers["X-Duplicate-Of"] = accepted.message_id
    return Response(status_code=202, headers=headers)


def _consent_filed(rt: Runtime, filed: ConsentFiled) -> Response:
    """A consent statement is filed at once: the AppRec OK says so now (from the gateway),
    ``X-Messages-Moved`` how many of the person's waiting messages it moved on."""
    envelope = filed.envelope
    receipt = Receipt(
        generated_at=repo.now(),
        sender=Organisation(name=rt.settings.gateway_name, her_id=rt.settings.gateway_her_id),
        receiver=envelope.sender.organisation,
        receiver_department=envelope.sender.department,
        status=ReceiptStatus.OK,
        original_message_type=envelope.msg_type,
        original_message_id=envelope.msg_id,
        original_issued_at=envelope.generated_at,
    )
    return Response(
        receipt_to_apprec(receipt),
        status_code=201,
        media_type=APPREC_XML,
        headers={"X-Messages-Moved": str(filed.moved)},
    )


def _headers(message_id: str) -> dict[str, str]:
    return {"Location": f"/receipts/{message_id}", "X-Message-Id": message_id}


def _apprec(status: int, receipt: Receipt) -> Response:
    return Response(
        receipt_to_apprec(receipt),
        status_code=status,
        media_type=APPREC_XML,
        headers=_headers(str(receipt.gateway_message_id)),
    )
