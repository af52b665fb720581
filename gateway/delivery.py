"""The delivery port: what an adapter must do, and the registry that finds adapters by name.

The core never imports a concrete adapter. The directory names one per KE (``adapter =
"ke_inbox"``); the registry imports ``adapters.<name>`` and calls its ``create(context)``.
Adding a platform is one module in ``adapters/`` plus the name in the directory.

Which failures are worth another try is decided in one place, :mod:`gateway.delivery_policy`;
adapters say what happened (a timeout, HTTP 503, a rejecting AppRec), never whether to retry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gateway.config import Settings
from gateway.delivery_policy import Cause, retryable
from gateway.domain.content import Content
from gateway.domain.model import ReceivingUnit
from gateway.domain.receipt import ReceiptError
from gateway.store.database import Database


@dataclass(frozen=True)
class Delivery:
    """One try at handing a message to its recipient.

    ``message_id`` is the gateway's id of the message and the id it carries at the recipient
    (MsgHead ``MsgId``, the FHIR Bundle's id): it is the same on every try and every resend,
    so the recipient can tell a resend from a new message and keep one.
    """

    message_id: str
    generation: int
    content: Content
    #: a kommune's KE (``CoordinatingUnit``) or a health trust that is party to a plan
    unit: ReceivingUnit
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: which try this is (0 = the first), for the adapter's own logging only
    attempt: int = 0


@dataclass(frozen=True)
class Acknowledgement:
    """The recipient's answer to a delivered message: OK, or rejected with AppRec codes."""

    message_id: str
    errors: tuple[ReceiptError, ...] = ()
    detail: str = ""
    #: the adapter's handle for marking the answer as read once it is recorded
    handle: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Delivered:
    """The recipient has the message. Its acknowledgement may come with the answer (a FHIR
    ``$process-message`` response) or later (an AppRec, a KE's ack in the pull inbox)."""

    detail: str
    #: the platform's own id for what it received (e.g. the NHN message id), for the operator
    remote_ref: str | None = None
    acknowledgement: Acknowledgement | None = None


class DeliveryFailed(Exception):
    """The adapter could not deliver. ``cause`` says what happened; the policy table says
    whether another try can help. ``code`` is the AppRec error code (8221) the sender gets
    when the failure is final. ``detail`` must hold no person data."""

    def __init__(self, cause: Cause, detail: str, *, code: str = "X99") -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail
        self.code = code

    @property
    def retryable(self) -> bool:
        return retryable(self.cause)


class DeliveryAdapter(Protocol):
    name: str

    async def deliver(self, delivery: Delivery) -> Delivered: ...


@runtime_checkable
class CollectsAcknowledgements(Protocol):
    """An adapter whose recipients answer later, through the platform (AppRecs on the NHN
    message service): the gateway polls it, records each answer, then marks it handled."""

    async def poll_acknowledgements(self) -> list[Acknowledgement]: ...

    async def mark_handled(self, acknowledgements: list[Acknowledgement]) -> None: ...


@dataclass(frozen=True)
class InboundDocument:
    """A message a sender addressed to the gateway through a platform (a hospital's MsgHead
    on the NHN message service): taken in like a ``POST /plo``, then marked handled."""

    body: bytes
    content_type: str
    #: the adapter's handle for marking it read once it is kept
    handle: str
    #: refused by the adapter before any reading (a signature or certificate that does not
    #: hold, AppRec S01/S02/S03/S99): kept as REJECTED with these errors, never taken in
    refused: tuple[ReceiptError, ...] = ()


@runtime_checkable
class ReceivesDocuments(Protocol):
    """An adapter whose platform also brings the gateway messages to take in: what its last
    poll found besides acknowledgements. Marked handled only once kept, so none is lost."""

    def take_inbound(self) -> list[InboundDocument]: ...

    async def mark_inbound_handled(self, documents: list[InboundDocument]) -> None: ...


@runtime_checkable
class Closable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class AdapterContext:
    settings: Settings
    db: Database


class UnknownAdapter(LookupError):
    pass


class AdapterRegistry:
    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self._adapters: dict[str, DeliveryAdapter] = {}

    def get(self, name: str) -> DeliveryAdapter:
        if name not in self._adapters:
            if not name.isidentifier():
                raise UnknownAdapter(name)
            try:
                module = importlib.import_module(f"adapters.{name}")
            except ModuleNotFoundError as e:
                raise UnknownAdapter(name) from e
            self._adapters[name] = module.create(self.context)
        return self._adapters[name]

    def check(self, names: set[str]) -> None:
        """Load every adapter the directory names, so a typo stops the start, not a message."""
        for name in sorted(names):
            self.get(name)

    def loaded(self) -> list[DeliveryAdapter]:
        return list(self._adapters.values())

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            if isinstance(adapter, Closable):
                await adapter.aclose()
