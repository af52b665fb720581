"""FHIR messaging endpoint for hospital systems."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api.auth import Sender, spoofed
from gateway.api.deps import Turned, runtime, take_body
from gateway.api.problems import operation_outcome, receipt_issues
from gateway.pipeline.ingest import SPOOFED, IngestRefused, SenderSpoofed, accept_fhir

router = APIRouter(prefix="/fhir", tags=["FHIR"])

_JSON_TYPES = ("application/fhir+json", "application/json")


@router.post(
    "/$process-message",
    status_code=202,
    summary="Send a FHIR message Bundle (need-for-IP notice)",
    responses={
        202: {"description": "Stored and queued; OperationOutcome.id is the gateway message id"},
        400: {"description": "Refused (kept as REJECTED); the receipt says why"},
        401: {"description": "No valid bearer token (the problem code says why)"},
        403: {"description": "sender-spoofed (kept as REJECTED) or scope-missing"},
        413: {"description": "Body too large"},
        415: {"description": "Not FHIR JSON"},
    },
)
async def process_message(request: Request, caller: Sender) -> JSONResponse:
    """Asynchronous FHIR messaging: the answer says the message is safely kept, not processed.

    The outcome comes as a receipt at ``GET /receipts/{id}`` (the ``Location`` header). Sending
    the same message again (same ``MessageHeader.source.endpoint`` and ``MessageHeader.id``)
    returns the first message's id and does not process it twice.
    """
    rt = runtime(request)
    got = await take_body(request, rt, _JSON_TYPES)
    if isinstance(got, Turned):
        issue = {413: "too-costly", 415: "not-supported"}[got.status]
        issues = [("error", issue, f"{e.code} {e.detail}") for e in got.receipt.errors]
        return _refused(got.status, str(got.receipt.gateway_message_id), issues)
    try:
        accepted = await accept_fhir(
            rt, got.body, got.content_type, got.caller, caller.organisations
        )
    except SenderSpoofed as e:
        await spoofed(request, caller)
        return _refused(403, e.message_id, [("error", "forbidden", SPOOFED.detail or "")])
    except IngestRefused as e:
        return _refused(400, e.message_id, receipt_issues(e.errors))
    note = (
        "duplicate of a message already received; not processed again"
        if accepted.duplicate
        else "accepted for delivery"
    )
    return operation_outcome(
        202,
        [("information", "informational", f"{note}; status {accepted.status}")],
        resource_id=accepted.message_id,
        headers=_headers(accepted.message_id),
    )


def _headers(message_id: str) -> dict[str, str]:
    return {"Location": f"/receipts/{message_id}", "X-Message-Id": message_id}


def _refused(status: int, message_id: str, issues: list[tuple[str, str, str]]) -> JSONResponse:
    return operation_outcome(status, issues, resource_id=message_id, headers=_headers(message_id))
