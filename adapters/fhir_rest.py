"""``fhir_rest``: FHIR R4 messaging over REST, for Helseplattformen (Epic) and any platform that
takes a message Bundle at ``$process-message``.

Delivering is ``POST {base_url}/$process-message`` (``application/fhir+json``) with the
message's Bundle as ``mappings/outbound.to_fhir`` writes it for its kind (a need notice,
``mappings/fhir/notice.py``; a plan transfer with every forskrift § 19 item,
``mappings/fhir/plan.py``), MessageHeader.destination = the KE's ``base_url``. The Bundle's
``id`` is the gateway's message id, the same on every try and every resend, so the platform
keeps one message however often a lost answer makes us send it again; MessageHeader.id stays
the sender's own message id, as the mapping writes it.

How answers are read (https://hl7.org/fhir/R4/messageheader-operation-process-message.html):

- 200 with a response message Bundle: MessageHeader.response.code ``ok`` -> delivered and
  acknowledged; ``fatal-error`` -> delivered with a rejecting acknowledgement whose codes come
  from the OperationOutcome (``mappings/fhir/outcome.py``); ``transient-error`` -> RECIPIENT_BUSY
  (tried again). A response.identifier naming another message, or an answer that is not such
  a Bundle, is UNREADABLE_ANSWER: nobody knows what the platform did, so it is tried again
  and the platform dedupes by Bundle id.
- 202 (or 204): the platform took the message to process it later and says nothing more.
  Delivered without acknowledgement: no answer comes by this interface, so the gateway's
  acknowledgement timeout resends it (same Bundle id) and finally gives up with DEAD. A KE on
  such a platform should be given an ``ack_timeout_seconds`` that fits its processing time.
- 4xx/5xx: the cause is the HTTP status's (``gateway/delivery_policy.py``), the 8221 code the
  OperationOutcome's, if there is one. In a 4xx, an issue of the transient family is
  RECIPIENT_BUSY (a "come back later" in FHIR's terms); a ``duplicate``-only refusal means the
  platform has the message: delivered, acknowledged OK ("already received").

Settings (``[kommune.ke.settings]``): ``base_url`` (required), ``endpoint`` (default
``$process-message``), ``timeout_seconds``, and for OAuth2 client credentials ``token_url``,
``client_id``, ``scope``, ``client_secret_env`` / ``client_secret_file`` (``adapters/http.py``).

Details and log lines hold status codes, issue codes and plain element paths only: an
answer's diagnostics and texts may echo the person, and are never copied.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from adapters.http import HttpAdapterBase, setting, status_failure
from gateway.delivery import (
    Acknowledgement,
    AdapterContext,
    Delivered,
    Delivery,
    DeliveryFailed,
)
from gateway.delivery_policy import Cause
from gateway.domain.content import Content
from gateway.domain.receipt import ReceiptError
from mappings.fhir.outcome import Outcome, read_outcome
from mappings.outbound import to_fhir

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: KE settings this adapter reads
SETTINGS = (
    "base_url",
    "endpoint",
    "timeout_seconds",
    "token_url",
    "client_id",
    "scope",
    "client_secret_env",
    "client_secret_file",
)
DEFAULT_ENDPOINT = "$process-message"
FHIR_JSON = "application/fhir+json"
_HEADERS = {"content-type": FHIR_JSON, "accept": FHIR_JSON}
#: R4 ``id``: what a Bundle id may be, and what we take from an answer as its reference
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True)
class Built:
    """A message Bundle ready to post, and what the operator should know about it."""

    bundle: Json
    #: e.g. that a text had to be shortened; goes into ``Delivered.detail``
    note: str | None = None


#: (content, destination endpoint) -> the Bundle; a vendor profile may shape it
Builder = Callable[[Content, str], Built]


def message_bundle(content: Content, destination: str) -> Built:
    return Built(to_fhir(content, destination=destination))


class FhirRest(HttpAdapterBase):
    """One adapter per profile (``fhir_rest`` itself, or a vendor profile such as
    ``samspill``): the profile may shape the Bundle, the transport is the same."""

    def __init__(
        self,
        context: AdapterContext,
        *,
        name: str = "fhir_rest",
        build: Builder = message_bundle,
    ) -> None:
        super().__init__()
        self.name = name
        self.context = context
        self.build = build

    async def deliver(self, delivery: Delivery) -> Delivered:
        settings = delivery.settings
        base = setting(settings, "base_url").rstrip("/")
        endpoint = _endpoint(settings)
        url = f"{base}/{endpoint}"
        what = f"FHIR {endpoint}"
        if not _FHIR_ID.fullmatch(delivery.message_id):
            # the gateway's own ids are UUIDs: this is a bug, not the platform's doing
            raise DeliveryFailed(Cause.ADAPTER_ERROR, "message id is not a FHIR id")
        built = self.build(delivery.content, base)
        bundle = {**built.bundle, "id": delivery.message_id}
        header_id = _header(bundle).get("id")
        entry_types = _entry_types(bundle)
        response = await self.send(
            settings, "POST", url, what, content=orjson.dumps(bundle), headers=_HEADERS
        )
        status = response.status_code
        if status in (200, 201):
            delivered = self._answer(response, what, delivery.message_id, header_id, entry_types)
        elif status in (202, 204):
            delivered = Delivered(
                f"{what}: HTTP {status}, taken for processing later; no acknowledgement "
                "comes by this interface (resent with the same Bundle id when overdue)"
            )
        elif status >= 400:
            delivered = self._refusal(response, what, delivery.message_id, entry_types)
        else:
            raise status_failure(response, what)
        if built.note:
            return Delivered(
                f"{delivered.detail}; {built.note}",
                delivered.remote_ref,
                delivered.acknowledgement,
            )
        return delivered

    # ------------------------------------------------------------------ answers

    def _answer(
        self,
        response: httpx.Response,
        what: str,
        message_id: str,
        header_id: object,
        entry_types: list[str],
    ) -> Delivered:
        """A synchronous answer: the response message Bundle."""
        status = response.status_code
        body = _json(response)
        header = _header(body) if _is_message(body) else {}
        answer = header.get("response")
        if header.get("resourceType") != "MessageHeader" or not isinstance(answer, dict):
            log.warning(
                "%s: message %s: HTTP %s answer is no response message",
                self.name,
                message_id,
                status,
            )
            raise DeliveryFailed(
                Cause.UNREADABLE_ANSWER,
                f"{what}: HTTP {status}, but the answer is no response message Bundle",
            )
        answered = answer.get("identifier")
        if answered is not None and answered not in (header_id, message_id):
            raise DeliveryFailed(
                Cause.UNREADABLE_ANSWER,
                f"{what}: HTTP {status}, but the response answers another message",
            )
        remote = _remote_ref(body, header)
        code = answer.get("code")
        if code == "ok":
            return Delivered(
                f"{what}: response ok",
                remote,
                Acknowledgement(message_id, detail=f"{self.name}: the platform's response: ok"),
            )
        outcome = read_outcome(_details(body, answer), entry_types)
        if code == "transient-error":
            raise DeliveryFailed(
                Cause.RECIPIENT_BUSY,
                _with(f"{what}: response transient-error", outcome),
            )
        if code == "fatal-error":
            if outcome.only_duplicate:
                return self._already_received(what, message_id, remote, "response fatal-error")
            errors = outcome.errors or (
                ReceiptError(code="X99", detail="FHIR response fatal-error without error issues"),
            )
            codes = ", ".join(e.code for e in errors)
            return Delivered(
                _with(f"{what}: response fatal-error", outcome),
                remote,
                Acknowledgement(
                    message_id,
                    errors=errors,
                    detail=f"{self.name}: the platform's response: fatal-error ({codes})",
                ),
            )
        raise DeliveryFailed(
            Cause.UNREADABLE_ANSWER,
            f"{what}: HTTP {status}, response code not ok / transient-error / fatal-error",
        )

    def _refusal(
        self, response: httpx.Response, what: str, message_id: str, entry_types: list[str]
    ) -> Delivered:
        """A 4xx/5xx: the status says whether to retry, the OperationOutcome with what code."""
        status = response.status_code
        outcome = read_outcome(_json(response), entry_types)
        if 400 <= status < 500 and outcome.only_duplicate:
            return self._already_received(what, message_id, None, f"HTTP {status}")
        code = outcome.errors[0].code if outcome.errors else "X99"
        failure = status_failure(response, what, code=code)
        cause = failure.cause
        if status < 500 and outcome.transient and cause is Cause.CLIENT_ERROR:
            cause = Cause.RECIPIENT_BUSY
        raise DeliveryFailed(cause, _with(failure.detail, outcome), code=code)

    def _already_received(
        self, what: str, message_id: str, remote: str | None, how: str
    ) -> Delivered:
        detail = f"{what}: {how}, duplicate: already received"
        return Delivered(
            detail,
            remote,
            Acknowledgement(message_id, detail=f"{self.name}: the platform has it already"),
        )


def _endpoint(settings: Mapping[str, Any]) -> str:
    value = settings.get("endpoint", DEFAULT_ENDPOINT)
    if not isinstance(value, str) or not value.strip("/"):
        raise DeliveryFailed(Cause.MISCONFIGURED, "adapter setting 'endpoint' must be a path")
    return value.strip("/")


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _is_message(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("resourceType") == "Bundle"
        and body.get("type") == "message"
    )


def _resources(bundle: Any) -> list[Json]:
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    out: list[Json] = []
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        out.append(resource if isinstance(resource, dict) else {})
    return out


def _header(bundle: Any) -> Json:
    """The first entry's resource (a message's MessageHeader), or {}."""
    resources = _resources(bundle)
    return resources[0] if resources else {}


def _entry_types(bundle: Json) -> list[str]:
    return [str(r.get("resourceType", "")) for r in _resources(bundle)]


def _details(bundle: Json, answer: Json) -> Any:
    """The OperationOutcome the response names (``response.details``), else the first one."""
    details = answer.get("details")
    reference = details.get("reference") if isinstance(details, dict) else None
    entries = bundle.get("entry")
    outcomes = [
        e
        for e in (entries if isinstance(entries, list) else ())
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "OperationOutcome"
    ]
    for entry in outcomes:
        res = entry["resource"]
        if reference and reference in (entry.get("fullUrl"), f"OperationOutcome/{res.get('id')}"):
            return res
    return outcomes[0]["resource"] if outcomes else None


def _remote_ref(bundle: Json, header: Json) -> str | None:
    """The platform's id for its answer (response Bundle id, else its MessageHeader id)."""
    for value in (bundle.get("id"), header.get("id")):
        if isinstance(value, str) and _FHIR_ID.fullmatch(value):
            return value
    return None


def _with(detail: str, outcome: Outcome) -> str:
    return f"{detail}; OperationOutcome: {outcome.summary}" if outcome.summary else detail


def create(context: AdapterContext) -> FhirRest:
    return FhirRest(context)
