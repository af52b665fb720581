"""Receipts for senders: the AppRec for a message once the gateway or the KE has answered."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from gateway.api.auth import Authenticated, actor_of, is_client, refuse
from gateway.api.deps import runtime, wants_xml
from gateway.api.problems import Problem
from gateway.auth.tokens import SCOPE_OPS_READ, SCOPE_SEND
from gateway.domain.receipt import Receipt
from gateway.store import repository as repo
from mappings.plo.apprec import receipt_to_apprec

router = APIRouter(tags=["Receipts"])

APPREC_XML = "application/xml"


@router.get(
    "/receipts/{message_id}",
    summary="The receipt for a message: AppRec 1.1 XML, or its structure as JSON",
    response_class=Response,
    responses={
        200: {
            "description": "AppRec 1.1 XML with `Accept: application/xml` (1.0 with "
            "`?version=1.0`), else the same AppRec structure as JSON",
            "content": {APPREC_XML: {}, "application/json": {}},
        },
        404: {"description": "unknown-message, or receipt-pending with the message's status"},
    },
)
async def receipt(
    request: Request, message_id: str, caller: Authenticated, version: str = "1.1"
) -> Response:
    """404 ``receipt-pending`` (with the current status) until the message is answered.

    A sender (``ipgw/messages.send``) reads the receipts of what its own client sent; an
    operator (``ipgw/ops.read``) any. For any other message the answer is the same 404 as
    for an unknown id: whether a message exists is not told to others.
    """
    rt = runtime(request)
    sent_by, found, message = await rt.db.read(_look_up, message_id)
    if not caller.has(SCOPE_OPS_READ) and not (
        caller.has(SCOPE_SEND) and sent_by is not None and is_client(sent_by, caller)
    ):
        if sent_by is not None:
            await refuse(rt, request, 404, "not-your-message", "", who=actor_of(caller))
        raise Problem(404, "unknown-message", "No message with this id")
    if found is not None:
        if wants_xml(request.headers.get("accept", "")):
            if version not in ("1.0", "1.1"):
                raise Problem(422, "unknown-apprec-version", "AppRec version is 1.0 or 1.1")
            return Response(
                receipt_to_apprec(found, "1.0" if version == "1.0" else "1.1"),
                media_type=APPREC_XML,
            )
        return JSONResponse(found.to_json())
    if message is None:
        raise Problem(404, "unknown-message", "No message with this id")
    raise Problem(
        404,
        "receipt-pending",
        "No receipt yet",
        f"the message is {message.status}",
        messageStatus=message.status.value,
    )


def _look_up(
    conn: Connection, message_id: str
) -> tuple[str | None, Receipt | None, repo.MessageRow | None]:
    """Who sent the message, and its receipt, or else the message (for its status): one
    read, since senders poll this."""
    found = repo.get_receipt(conn, message_id)
    message = None if found else repo.get_message(conn, message_id)
    return repo.received_by(conn, message_id), found, message
