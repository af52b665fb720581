"""A message's content in the format a recipient reads, whatever its kind: the one place the
pull inbox and the adapters turn canonical content into FHIR or MsgHead XML."""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain.content import Content
from gateway.domain.model import NeedNotice
from gateway.domain.plan import PlanStatusMessage
from mappings.fhir.notice import notice_to_bundle
from mappings.fhir.plan import transfer_to_bundle
from mappings.fhir.plan_status import status_to_bundle
from mappings.plo.msghead import Party
from mappings.plo.notice import notice_to_msghead
from mappings.plo.plan import transfer_to_msghead
from mappings.plo.plan_status import status_to_msghead


def to_fhir(content: Content, *, destination: str | None = None) -> dict[str, Any]:
    """The FHIR R4 message Bundle (``MessageHeader.destination`` = ``destination``)."""
    if isinstance(content, NeedNotice):
        return notice_to_bundle(content, destination=destination)
    if isinstance(content, PlanStatusMessage):
        return status_to_bundle(content, destination=destination)
    return transfer_to_bundle(content, destination=destination)


def to_msghead(
    content: Content, *, msg_id: str, receiver: Party, structured: bool = True
) -> etree._Element:
    """MsgHead v1.2 with ``msg_id`` as MsgId. A plan always goes with its structured
    IndividuellPlan content: there is no text-only form of a whole plan; a plan status is
    Dialogmelding text in any case."""
    if isinstance(content, NeedNotice):
        return notice_to_msghead(content, msg_id=msg_id, receiver=receiver, structured=structured)
    if isinstance(content, PlanStatusMessage):
        return status_to_msghead(content, msg_id=msg_id, receiver=receiver)
    return transfer_to_msghead(content, msg_id=msg_id, receiver=receiver)
