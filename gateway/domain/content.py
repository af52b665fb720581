"""What a message carries, by its kind: one loader for the canonical form the store keeps, so
every stage reads a stored message the same way."""

from __future__ import annotations

from gateway.domain.model import MessageKind, NeedNotice, Patient
from gateway.domain.plan import PlanStatusMessage, PlanTransfer

Content = NeedNotice | PlanTransfer | PlanStatusMessage
#: what senders send the gateway (a status message is the gateway's own)
Incoming = NeedNotice | PlanTransfer

_MODELS: dict[MessageKind, type[NeedNotice] | type[PlanTransfer] | type[PlanStatusMessage]] = {
    MessageKind.NEED_NOTICE: NeedNotice,
    MessageKind.PLAN_TRANSFER: PlanTransfer,
    MessageKind.PLAN_STATUS: PlanStatusMessage,
}


def load_content(kind: str, canonical: str) -> Content:
    """The canonical content of a stored message (``messages.canonical``) of ``kind``."""
    return _MODELS[MessageKind(kind)].model_validate_json(canonical)


def person_of(content: Content) -> Patient:
    """The person the message is about: consent and routing go by them."""
    return content.plan.patient if isinstance(content, PlanTransfer) else content.patient
