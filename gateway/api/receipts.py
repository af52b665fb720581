"""Receipts for senders: the AppRec for a message once the gateway or the KE has answered."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection

from gateway.api.deps import runtime
from gateway.api.problems import Problem
from gateway.store import repository as repo

router = APIRouter(tags=["Receipts"])


@router.get("/receipts/{message_id}", summary="The receipt (AppRec as JSON) for a message")
async def receipt(request: Request, message_id: str) -> dict[str, Any]:
    """404 ``receipt-pending`` (with the current status) until the message is answered."""
    rt = runtime(request)
    body, message = await rt.db.read(_receipt_or_message, message_id)
    if body:
        return body
    if message is None:
        raise Problem(404, "unknown-message", "No message with this id")
    raise Problem(
        404,
        "receipt-pending",
        "No receipt yet",
        f"the message is {message.status}",
        messageStatus=message.status.value,
    )


def _receipt_or_message(
    conn: Connection, message_id: str
) -> tuple[dict[str, Any] | None, repo.MessageRow | None]:
    body = repo.get_receipt(conn, message_id)
    return body, None if body else repo.get_message(conn, message_id)
