"""``nhn_msh``: Norsk Helsenett's message service (meldingstjener), REST API of EDI 2.0.

Most kommune EPJs receive over the health network only, addressed by HER-id, so a KE on such
a system is reached by posting a MsgHead to NHN's message service; the KE's system answers
later with an AppRec, which lands in the gateway's own unread list at the same service.

The shape of the API assumed here (to be checked against NHN's published API before real
traffic; the simulated service in ``gateway/demo/platforms/nhn_msh_server.py`` implements
exactly this):

- ``POST {base}/Messages`` with JSON ``{"receiverHerIds": [int], "senderHerId": int,
  "businessDocument": base64 CMS, "contentType": gateway.cms.CONTENT_TYPE,
  "contentTransferEncoding": "base64", "schemaVersion": "1.2"}`` -> 201 and the NHN message id
  (a GUID, as a JSON string or ``{"id": ...}``);
- ``GET {base}/Messages?receiverHerIds={her}`` -> the unread messages,
  ``[{"id": guid, "receiverHerId": int, "senderHerId": int}]``;
- ``GET {base}/Messages/{id}/business-document`` -> ``{"businessDocument": base64,
  "contentType": ..., "contentTransferEncoding": "base64"}``;
- ``PUT {base}/Messages/{id}/read/{receiverHerId}`` -> 204: the message is consumed.

What is posted (``mappings/outbound.to_msghead``): a need notice as ``DIALOG_HELSEFAGLIG``
with the Dialogmelding and, unless the KE's ``structured`` setting is false, our BehovForIP; a
plan transfer as ``IP_PLAN`` with the structured IndividuellPlan, since a whole plan has no
text-only form. A KE whose EPJ shows text only (``structured = false``) would see nothing of
such a plan, so it gets the plan's whole text as a Dialogmelding first, the IndividuellPlan
still beside it (``adapters/plan_text.py``); the delivery detail says so.

Signed, then encrypted (``gateway/cms.py``): the MsgHead is signed with the gateway's key and
encrypted to the receiver's certificate (the entry's ``encryption_cert``, else
``IPGW_NHN_CERT_DIR/<her_id>.pem``); a receiver without a usable certificate fails the delivery
as MISCONFIGURED (final: the operator must supply it), never goes plain. Plain only for a peer
whose entry says ``encryption = "none"`` (simulated and test peers). What arrives is opened
and checked before anything else reads it (decrypt, signature, certificate, revocation list,
the sender against the transport sender and the certificate's organisation); one that fails
is handed to the core refused, with its AppRec code (S01/S02/S03/S99), and kept as it came.
``adapters/README.md`` has the profile and the checks.

The MsgHead's ``MsgId`` is the gateway's message id, the same on every try and resend: NHN
itself stores every post as a new message, so it is the receiving system, which keeps one
message per ``MsgId``, that makes a resend show up once. A timeout after NHN stored the post
therefore costs nothing but a second AppRec.

Answers: every AppRec (1.0 or 1.1) in the gateway's unread list becomes an
:class:`Acknowledgement` for the message its ``OriginalMsgId`` names; it is marked read only
after the core has recorded it (``mark_handled``), so a crash in between re-reads it and the
core ignores the repeat. What else may lie there:

- any other document (a hospital's MsgHead addressed to the gateway's HER-id, or something
  that cannot be read at all): an :class:`InboundDocument` the core takes in like a
  ``POST /plo`` (a valid notice goes on its way; anything else is kept as REJECTED with its
  code, for the operator), and marks read only once it is kept. Nothing is dropped;
- an AppRec that cannot be read (a required element missing, no ``OriginalMsgId``): left
  unread, warned about once. It is the KE's answer to one of our messages, so it is never
  thrown away; an operator can read it at NHN, and the message it answers is resent when its
  acknowledgement is overdue (the KE answers again).

Which bases are polled: every base this adapter has delivered to, plus those the directory
names for it at start (so AppRecs for messages delivered before a restart are still
collected), one poll per base per call, with the token settings last seen for that base.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography import x509
from lxml import etree

from adapters.http import HttpAdapterBase, setting, status_failure
from adapters.plan_text import TextTooLong, add_text_document, plan_dialog, plan_text
from gateway.auth import spoofing
from gateway.cms import (
    CONTENT_TYPE,
    CmsConfigError,
    CmsRefused,
    GatewayCms,
    Opened,
    is_cms,
    open_sealed,
    seal,
)
from gateway.delivery import (
    Acknowledgement,
    AdapterContext,
    Delivered,
    Delivery,
    DeliveryFailed,
    InboundDocument,
)
from gateway.delivery_policy import Cause
from gateway.directory import Directory, DirectoryError, load_directory
from gateway.domain.content import Content
from gateway.domain.model import Organisation
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import ReceiptError, ReceiptStatus, Refused
from mappings.outbound import to_msghead
from mappings.plo import namespaces as ns
from mappings.plo.apprec import apprec_to_receipt, apprec_version
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.xmlsafe import parse_xml

log = logging.getLogger(__name__)

#: the settings that say where and as whom to poll; the rest are per KE
_BASE_KEYS = (
    "base_url",
    "token_url",
    "client_id",
    "scope",
    "client_secret_env",
    "client_secret_file",
    "timeout_seconds",
)


@dataclass(frozen=True)
class Built:
    """A business document ready to post, and what the operator should know about it."""

    root: etree._Element
    #: e.g. that the readable text had to be shortened; goes into ``Delivered.detail``
    note: str | None = None
    #: what was posted, for the detail, when the ``structured`` flag alone does not say it
    form: str | None = None


#: (content, MsgId, receiver, structured) -> the MsgHead; a vendor profile may shape it
Builder = Callable[[Content, str, Party, bool], Built]

PLAN_STRUCTURED = "MsgHead IP_PLAN with the structured IndividuellPlan"
PLAN_WITH_TEXT = (
    "MsgHead IP_PLAN: the plan as Dialogmelding text beside the structured IndividuellPlan"
)


def msghead_document(content: Content, msg_id: str, receiver: Party, structured: bool) -> Built:
    """A notice as the KE's ``structured`` setting asks; a plan always structured, and for a
    text-only receiver (``structured = false``) with its whole text beside it."""
    if isinstance(content, PlanTransfer):
        return plan_document(content, msg_id, receiver, text=not structured)
    return Built(to_msghead(content, msg_id=msg_id, receiver=receiver, structured=structured))


def plan_document(
    transfer: PlanTransfer,
    msg_id: str,
    receiver: Party,
    *,
    text: bool,
    limit: int | None = None,
) -> Built:
    """The plan's MsgHead (``mappings/outbound.py``), for a receiver that shows text only
    (``text``) with a Dialogmelding of the whole plan first, within ``limit`` characters.

    The structured IndividuellPlan always goes along: it is the only form that keeps every
    field, so whatever a text field cannot hold is still in the message, and the note says so.
    """
    root = to_msghead(transfer, msg_id=msg_id, receiver=receiver)
    if not text:
        return Built(root, form=PLAN_STRUCTURED)
    try:
        written = plan_text(transfer, limit)
    except TextTooLong:
        raise DeliveryFailed(
            Cause.CLIENT_ERROR,
            f"the plan's readable text does not fit the {limit} characters the platform takes, "
            "even cut down to the lines that say which plan it is and who sent it",
            code="T99",
        ) from None
    add_text_document(root, plan_dialog(transfer, written))
    if written.cut:
        note = (
            f"the plan's readable text was cut to the {limit} characters the platform's text "
            f"field takes ({written.whole} of {written.lines} plan lines whole, the cut marked in "
            "the text); every field is in the structured IndividuellPlan document"
        )
    else:
        note = (
            "the receiver shows text only: the whole plan went as Dialogmelding text, every "
            "field also in the structured IndividuellPlan document"
        )
    return Built(root, note, PLAN_WITH_TEXT)


class NhnMsh(HttpAdapterBase):
    """One adapter per profile (``nhn_msh`` itself, or a vendor profile such as ``acos``).

    ``structured`` None lets each KE choose with its ``structured`` setting (default true);
    a profile whose vendor takes only one form fixes it, and a KE setting that contradicts it
    is a configuration fault, not something to guess around.
    """

    def __init__(
        self,
        context: AdapterContext,
        *,
        name: str = "nhn_msh",
        structured: bool | None = None,
        build: Builder = msghead_document,
    ) -> None:
        super().__init__()
        self.name = name
        self.context = context
        self.structured = structured
        self.build = build
        #: base_url -> the settings to poll it with (token settings as last seen)
        self.bases: dict[str, dict[str, Any]] = {}
        #: unreadable AppRecs already warned about (they stay unread: warn once, not per poll)
        self._warned: set[str] = set()
        #: documents for the gateway found by the last polls, not yet taken (by handle)
        self._inbound: dict[str, InboundDocument] = {}
        #: the gateway's keys, certificates and trusted CAs (IPGW_NHN_*), read when needed
        self.cms = GatewayCms(context.settings)
        #: HER-ids delivered to without CMS (``encryption = "none"``) by this process: their
        #: plain answers are accepted, as are those of entries the directory marks so
        self._plain_peers: set[int] = set()
        self._directory_cache: tuple[tuple[int, int], Directory | None] | None = None

    # ------------------------------------------------------------------ delivering

    async def deliver(self, delivery: Delivery) -> Delivered:
        settings = delivery.settings
        base = _base(settings)
        sender_her_id = self.context.settings.gateway_her_id
        if sender_her_id is None:
            raise DeliveryFailed(
                Cause.MISCONFIGURED,
                "the gateway's own HER-id (IPGW_GATEWAY_HER_ID) is not set: "
                "nothing can be posted to the NHN message service",
            )
        structured = self._structured(settings)
        receiver = Party(Organisation(name=delivery.unit.name, her_id=delivery.unit.her_id))
        content = delivery.content
        try:
            built = self.build(content, delivery.message_id, receiver, structured)
        except ValueError:
            raise DeliveryFailed(
                Cause.CLIENT_ERROR,
                f"the {'plan' if isinstance(content, PlanTransfer) else 'notice'} cannot be "
                "written as a MsgHead for this platform",
                code="T99",
            ) from None
        document, content_type, protection = self._protect(
            settings, delivery.unit.her_id, to_bytes(built.root)
        )
        body = {
            "receiverHerIds": [delivery.unit.her_id],
            "senderHerId": sender_her_id,
            "businessDocument": base64.b64encode(document).decode("ascii"),
            "contentType": content_type,
            "contentTransferEncoding": "base64",
            "schemaVersion": "1.2",
        }
        try:
            response = await self.send(
                settings, "POST", f"{base}/Messages", "NHN message service", json=body
            )
        except DeliveryFailed as e:
            if e.cause is Cause.TIMEOUT:
                # NHN may have stored it: its AppRec may come, so this base is polled
                self.remember(settings)
            raise
        if not response.is_success:
            raise status_failure(response, "NHN message service")
        self.remember(settings)
        remote = _message_id(response)
        form = built.form or (
            "MsgHead with structured IP content" if structured else "MsgHead, Dialogmelding only"
        )
        detail = f"posted to the NHN message service ({form}; {protection}); the AppRec comes later"
        if remote is None:
            detail += "; the service's answer held no readable message id"
        if built.note:
            detail += f"; {built.note}"
        return Delivered(detail, remote_ref=remote, acknowledgement=None)

    def _protect(
        self, settings: Mapping[str, Any], her_id: int, document: bytes
    ) -> tuple[bytes, str, str]:
        """The business document as it travels, its content type, and how (for the detail).

        Signed by the gateway, then encrypted to the receiver's certificate. Plain only for a
        peer whose entry says ``encryption = "none"`` (the simulated and test peers): a
        receiver without a certificate is a configuration fault the operator must fix, so the
        delivery fails at once (MISCONFIGURED, final) rather than send a person's data in clear
        or wait through retries that cannot help.
        """
        if _encryption(settings) == "none":
            self._plain_peers.add(her_id)
            return document, "application/xml", 'plain: encryption = "none"'
        try:
            signer = self.cms.signer()
            trust = self.cms.trust()
            recipient = self._receiver_certificate(settings, her_id)
        except CmsConfigError as e:
            raise DeliveryFailed(Cause.MISCONFIGURED, str(e)) from None
        # a receiver would refuse our expired certificate (S02), and one cannot be written to
        # a certificate that is not valid: both are for the operator to renew, said at once
        try:
            trust.check(signer.certificate, signer.chain, usage="sign")
        except CmsRefused as e:
            raise DeliveryFailed(
                Cause.MISCONFIGURED, f"the gateway's signing {e.detail} ({e.code})"
            ) from None
        try:
            trust.check(recipient, usage="encrypt")
        except CmsRefused as e:
            raise DeliveryFailed(
                Cause.MISCONFIGURED,
                f"the receiver's (HER-id {her_id}) encryption {e.detail} ({e.code})",
            ) from None
        try:
            sealed = seal(document, signer, recipient)
        except (TypeError, ValueError):
            # CMS key transport here takes RSA, which the sector's certificates are
            raise DeliveryFailed(
                Cause.MISCONFIGURED,
                f"the receiver's (HER-id {her_id}) encryption certificate has no RSA key",
            ) from None
        self._plain_peers.discard(her_id)
        return sealed, CONTENT_TYPE, "signed and encrypted with CMS"

    def _receiver_certificate(self, settings: Mapping[str, Any], her_id: int) -> x509.Certificate:
        """The entry's ``encryption_cert`` (relative to the directory file), else
        ``<her_id>.pem`` in IPGW_NHN_CERT_DIR (certificates from Adresseregisteret)."""
        configured = settings.get("encryption_cert")
        gateway = self.context.settings
        if configured is not None:
            if not isinstance(configured, str) or not configured.strip():
                raise CmsConfigError("adapter setting 'encryption_cert' must be a file path")
            path = Path(configured)
            if not path.is_absolute():
                path = gateway.directory_file.parent / path
        elif (
            gateway.nhn_cert_dir is not None and (gateway.nhn_cert_dir / f"{her_id}.pem").is_file()
        ):
            path = gateway.nhn_cert_dir / f"{her_id}.pem"
        else:
            raise CmsConfigError(
                f"no encryption certificate for the receiver (HER-id {her_id}): give its "
                "directory entry 'encryption_cert', or put the certificate from "
                f"Adresseregisteret in IPGW_NHN_CERT_DIR as {her_id}.pem"
            )
        return self.cms.certificate(path)

    def _structured(self, settings: Mapping[str, Any]) -> bool:
        value = settings.get("structured")
        if value is not None and not isinstance(value, bool):
            raise DeliveryFailed(
                Cause.MISCONFIGURED, "adapter setting 'structured' must be true or false"
            )
        if self.structured is None:
            return True if value is None else value
        if value is not None and value != self.structured:
            form = "structured IP content" if self.structured else "Dialogmelding text only"
            raise DeliveryFailed(
                Cause.MISCONFIGURED,
                f"the {self.name} profile takes {form}: remove the 'structured' setting",
            )
        return self.structured

    def remember(self, settings: Mapping[str, Any]) -> None:
        """Poll this base from now on (with these token settings)."""
        self.bases[_base(settings)] = {k: settings[k] for k in _BASE_KEYS if k in settings}

    # ------------------------------------------------------------------ answers

    async def poll_acknowledgements(self) -> list[Acknowledgement]:
        her_id = self.context.settings.gateway_her_id
        if her_id is None:
            return []
        acks: list[Acknowledgement] = []
        for base, settings in list(self.bases.items()):
            try:
                acks += await self._poll(base, settings, her_id)
            except DeliveryFailed as e:
                log.warning("%s: polling %s for AppRecs failed (%s)", self.name, base, e.detail)
        return acks

    async def _poll(
        self, base: str, settings: Mapping[str, Any], her_id: int
    ) -> list[Acknowledgement]:
        what = "NHN message service (unread list)"
        response = await self.send(
            settings, "GET", f"{base}/Messages", what, params={"receiverHerIds": her_id}
        )
        if not response.is_success:
            raise status_failure(response, what)
        acks = []
        for nhn_id, sender in _unread(response, her_id):
            try:
                ack = await self._answer(base, settings, nhn_id, sender)
            except DeliveryFailed as e:
                # stays unread: fetched again on the next poll
                log.warning("%s: message %s at %s not fetched (%s)", self.name, nhn_id, base, e)
                continue
            if ack is not None:
                acks.append(ack)
        return acks

    async def _answer(
        self, base: str, settings: Mapping[str, Any], nhn_id: str, sender: int | None
    ) -> Acknowledgement | None:
        """The acknowledgement in one unread message, or None (handed in, refused, or left).

        A CMS document is opened first (decrypted, signature and certificate checked); one that
        does not open is refused with its code and kept for the operator, never read further.
        A plain one is taken only from a peer marked ``encryption = "none"``. Then the sender
        it names must be the one NHN delivered it from, and the organisation of the signing
        certificate (spoofing).
        """
        what = "NHN message service (business document)"
        response = await self.send(
            settings, "GET", f"{base}/Messages/{nhn_id}/business-document", what
        )
        if not response.is_success:
            raise status_failure(response, what)
        handle = f"{base}|{nhn_id}"
        try:
            body, content_type = _document(response)
        except ValueError:
            # not the shape we know: kept as it came, refused at ingest (or below)
            body, content_type = response.content, "application/xml"
        opened: Opened | None = None
        if is_cms(content_type):
            try:
                opened = open_sealed(body, self.cms.recipients(), self.cms.trust())
            except CmsConfigError as e:
                # the gateway's own configuration is at fault, not the sender: left unread,
                # opened once the operator has configured the keys
                self._warn_once(nhn_id, base, f"cannot be opened: {e}", what="document")
                return None
            except CmsRefused as e:
                self._refuse(handle, body, content_type, e.code, e.detail)
                return None
            body = opened.content
        elif sender is None or not self._plain_allowed(sender):
            self._refuse(
                handle,
                body,
                content_type,
                "S01",
                "not signed and encrypted (CMS): the gateway takes plain documents only from "
                'peers marked encryption = "none"',
            )
            return None
        try:
            root = parse_xml(body, max_bytes=self.context.settings.max_body_bytes)
        except (ValueError, Refused):
            root = None
        if root is not None and (mismatch := self._impostor(root, sender, opened)) is not None:
            self._refuse(handle, body, content_type, *mismatch)
            return None
        if root is None or apprec_version(root) is None:
            # a message for the gateway to take in (or to keep, refused, for the operator)
            self._inbound[handle] = InboundDocument(body, "application/xml", handle)
            return None
        try:
            receipt = apprec_to_receipt(root)
        except Refused as e:
            self._warn_once(nhn_id, base, "; ".join(err.code for err in e.errors))
            return None
        if not receipt.original_message_id:
            self._warn_once(nhn_id, base, "no OriginalMsgId/Id")
            return None
        codes = ", ".join(e.code for e in receipt.errors)
        if receipt.status is ReceiptStatus.REJECTED:
            errors = receipt.errors
            detail = f"AppRec from the KE: rejected ({codes})"
        elif receipt.status is ReceiptStatus.OK_WITH_ERRORS:
            # the KE has the message and took it: an acknowledgement; the codes are kept in
            # the detail for the operator, the sender's receipt says OK
            errors = ()
            detail = f"AppRec from the KE: OK, feil i delmelding ({codes})"
        else:
            errors = ()
            detail = "AppRec from the KE: OK"
        return Acknowledgement(
            message_id=receipt.original_message_id,
            errors=errors,
            detail=f"{detail} (via {self.name})",
            handle=handle,
        )

    def _refuse(self, handle: str, body: bytes, content_type: str, code: str, why: str) -> None:
        """Hand the document in as refused: kept as it came (REJECTED, ``code``), marked read."""
        log.warning("%s: document %s refused (%s: %s)", self.name, handle, code, why)
        self._inbound[handle] = InboundDocument(
            body,
            content_type or "application/octet-stream",
            handle,
            refused=(ReceiptError(code=code, detail=why),),
        )

    def _plain_allowed(self, her_id: int) -> bool:
        if her_id in self._plain_peers:
            return True
        directory = self._directory()
        entry = directory.entry_by_her_id(her_id) if directory is not None else None
        return entry is not None and entry.settings.get("encryption") == "none"

    def _impostor(
        self, root: etree._Element, sender: int | None, opened: Opened | None
    ) -> tuple[str, str] | None:
        """Why the document is not from whom it says, or None.

        The same rule as for a caller's token (gateway/auth/spoofing.py), with the signing
        certificate in the token's place: the sender is the ``Sender`` organisation and its
        unit, read as the model reads them (persons inside are not the sender). The HER-id NHN
        delivered it from must be the organisation's or its unit's (S99); every organisation
        number the sender is known by (as written, and the directory's for its HER-ids) must be
        the certificate's (S02), and there must be one: a sender that cannot be placed cannot
        be verified (S02).
        """
        named = _sender_parties(root)
        her_ids = spoofing.sender_her_ids(named)
        if sender is not None and (her_ids is None or (her_ids and sender not in her_ids)):
            return (
                "S99",
                "the document's sender is not the party it came from on the message service "
                "(transport sender HER-id differs)",
            )
        if opened is None or opened.orgnr is None:
            # a plain peer (encryption = "none"), or a certificate naming no organisation
            # (an enterprise certificate always does; the test PKI's may not): the transport's
            # HER-id above is all there is to compare
            return None
        directory = self._directory()
        if directory is None:
            return ("S99", "the directory is not readable: the sender cannot be verified")
        known = spoofing.sender_orgnrs(named, directory)
        if not spoofing.speaks_for(frozenset({opened.orgnr}), known):
            return (
                "S02",
                "the signing certificate does not belong to the document's sender (or the "
                "sender names no organisation number to compare)",
            )
        return None

    def _directory(self) -> Directory | None:
        """The directory as it is now (read again when the file changes)."""
        path = self.context.settings.directory_file
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._directory_cache is None or self._directory_cache[0] != stamp:
            try:
                directory: Directory | None = load_directory(path)
            except DirectoryError:
                directory = None
            self._directory_cache = (stamp, directory)
        return self._directory_cache[1]

    def take_inbound(self) -> list[InboundDocument]:
        documents, self._inbound = list(self._inbound.values()), {}
        return documents

    async def mark_inbound_handled(self, documents: list[InboundDocument]) -> None:
        await self._mark_handles([d.handle for d in documents])

    def _warn_once(self, nhn_id: str, base: str, why: str, *, what: str = "AppRec") -> None:
        if nhn_id in self._warned:
            return
        self._warned.add(nhn_id)
        log.warning(
            "%s: %s %s at %s cannot be read (%s): left unread for an operator",
            self.name,
            what,
            nhn_id,
            base,
            why,
        )

    async def mark_handled(self, acknowledgements: list[Acknowledgement]) -> None:
        await self._mark_handles([a.handle for a in acknowledgements if a.handle])

    async def _mark_handles(self, handles: list[str]) -> None:
        her_id = self.context.settings.gateway_her_id
        if her_id is None:
            return
        for handle in handles:
            if "|" not in handle:
                continue
            base, nhn_id = handle.rsplit("|", 1)
            settings = self.bases.get(base, {"base_url": base})
            try:
                await self._mark_read(base, settings, her_id, nhn_id)
            except DeliveryFailed as e:
                # read again on the next poll; the core ignores what it has recorded
                log.warning("%s: %s at %s not marked read (%s)", self.name, nhn_id, base, e)

    async def _mark_read(
        self, base: str, settings: Mapping[str, Any], her_id: int, nhn_id: str
    ) -> None:
        what = "NHN message service (mark read)"
        response = await self.send(settings, "PUT", f"{base}/Messages/{nhn_id}/read/{her_id}", what)
        if not response.is_success:
            raise status_failure(response, what)


def _base(settings: Mapping[str, Any]) -> str:
    return setting(settings, "base_url").rstrip("/")


def _message_id(response: httpx.Response) -> str | None:
    """NHN's id for what it stored: a JSON string, or ``{"id": ...}``."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        body = body.get("id")
    return body if isinstance(body, str) and 0 < len(body) <= 128 else None


def _unread(response: httpx.Response, her_id: int) -> list[tuple[str, int | None]]:
    """(NHN id, the transport sender's HER-id if the list names it) of each unread message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        raise DeliveryFailed(Cause.UNREADABLE_ANSWER, "unread list: not a JSON array")
    found = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        receiver = item.get("receiverHerId")
        if receiver is not None and receiver != her_id:
            continue
        sender = item.get("senderHerId")
        valid = isinstance(sender, int) and not isinstance(sender, bool) and sender > 0
        found.append((item["id"], sender if valid else None))
    return found


def _document(response: httpx.Response) -> tuple[bytes, str]:
    """The business document's bytes and content type; ValueError when the envelope is not
    what we speak."""
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("businessDocument"), str):
        raise ValueError("no businessDocument")
    encoding = body.get("contentTransferEncoding", "base64")
    if str(encoding).lower() != "base64":
        raise ValueError("contentTransferEncoding is not base64")
    try:
        document = base64.b64decode(body["businessDocument"], validate=True)
    except binascii.Error:
        raise ValueError("businessDocument is not base64") from None
    content_type = body.get("contentType")
    return document, content_type if isinstance(content_type, str) else "application/xml"


def _encryption(settings: Mapping[str, Any]) -> Literal["cms", "none"]:
    value = settings.get("encryption", "cms")
    if value == "cms":
        return "cms"
    if value == "none":
        return "none"
    raise DeliveryFailed(
        Cause.MISCONFIGURED, 'adapter setting \'encryption\' must be "cms" (default) or "none"'
    )


def _sender_parties(root: etree._Element) -> list[spoofing.Named]:
    """The sender organisation and its unit, as (HER-id, orgnr): MsgHead
    ``MsgInfo/Sender/Organisation`` and the ``Organisation`` in it (``Ident``: ``Id``,
    ``TypeId``), or an AppRec's ``Sender/HCP/Inst`` and its ``Dept`` (``Id``, ``TypeId``, and
    ``AdditionalId`` with ``Type``). A person inside is not the sender."""
    org = root.find(f"{{{ns.MSGHEAD}}}MsgInfo/{{{ns.MSGHEAD}}}Sender/{{{ns.MSGHEAD}}}Organisation")
    if org is not None:
        unit = org.find(f"{{{ns.MSGHEAD}}}Organisation")
        levels = [org, *([unit] if unit is not None else [])]
        return [_idents(e.findall(f"{{{ns.MSGHEAD}}}Ident")) for e in levels]
    sender = next(
        (c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == "Sender"), None
    )
    inst = _child(_child(sender, "HCP"), "Inst")
    if inst is None:
        return []
    dept = _child(inst, "Dept")
    return [_idents([inst, *_children(inst, "AdditionalId")])] + (
        [_idents([dept, *_children(dept, "AdditionalId")])] if dept is not None else []
    )


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    return next(iter(_children(element, name)), None) if element is not None else None


def _children(element: etree._Element | None, name: str) -> list[etree._Element]:
    if element is None:
        return []
    return [c for c in element if isinstance(c.tag, str) and etree.QName(c).localname == name]


def _idents(holders: list[etree._Element]) -> spoofing.Named:
    """(HER-id, orgnr) from elements holding ``Id`` and ``TypeId`` (or ``Type``)."""
    her_id = orgnr = None
    for holder in holders:
        ident, kind = _child(holder, "Id"), _child(holder, "TypeId")
        if kind is None:
            kind = _child(holder, "Type")
        if ident is None or kind is None:
            continue
        value = (ident.text or "").strip()
        if kind.get("V") == "HER":
            her_id = value
        elif kind.get("V") == "ENH":
            orgnr = value
    return her_id, orgnr


def seed_from_directory(adapter: NhnMsh, context: AdapterContext) -> None:
    """Poll the bases the directory names for this adapter from the start, so AppRecs for
    messages delivered before a restart are collected without waiting for a new delivery."""
    try:
        directory = load_directory(context.settings.directory_file)
    except DirectoryError:
        return  # the runtime reports a broken directory itself
    for entry in directory.entries.values():
        if entry.unit.adapter == adapter.name and isinstance(entry.settings.get("base_url"), str):
            adapter.remember(entry.settings)


def create(context: AdapterContext) -> NhnMsh:
    adapter = NhnMsh(context)
    seed_from_directory(adapter, context)
    return adapter
