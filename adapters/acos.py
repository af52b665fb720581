"""``acos``: KEs on Acos (Acos Individuell plan / Acos Omsorg), reached over Norsk Helsenett.

Interface: the NHN message service, exactly as ``nhn_msh`` (same settings, same AppRecs).
Content of a need notice: MsgHead v1.2 with Dialogmelding 1.1 (helsefaglig dialog) *only* —
no structured IP content (a plan: see below). Field limit: the Dialogmelding text
(``Notat/TekstNotatInnhold``) holds at most 4000 characters, counted as the text a case worker
sees (each paragraph's text, paragraphs separated by one line break; markup does not count).

Both are ASSUMPTIONS, to be confirmed with the vendor before real traffic: that this system
does not take our structured content, and how its text limit is counted.

Without the structured content, the readable text is all the KE gets, so nothing may be left
only in the structure. ``mappings/plo/dialog.py`` already writes the need, the services asked
for, urgency, whether next of kin take part, an existing coordinator, the interpreter language,
who consented and when, the sender and its contact person. Three facts are in the structure
only; this profile adds them to the text:

- why the person cannot consent themselves (when next of kin consented in their place),
- the consent's reference,
- the hospital's own reference for the notice (what the KE quotes when it calls back).

Not added: the sender's answer endpoint, which is routing for the gateway, not for a reader.

A plan transfer: there is no text-only form of a whole plan, and refusing it (T10) would
leave the new kommune with nothing until someone retyped the plan. It goes as ``IP_PLAN``
with two documents (``adapters/nhn_msh.plan_document``, ``adapters/plan_text.py``): first a
Dialogmelding with every forskrift § 19 item in words, which is what Acos shows; then the
structured IndividuellPlan, which Acos is assumed not to read (at most it keeps it as an
attachment) but which holds every field, for the record and for the plan's next move. When
the plan's text is longer than the field, it is cut at a line, visibly ("Forkortet: ...",
naming the structured document as where the rest is), and the lines that say which plan it
is, who sent it and whom to call are never cut; the delivery detail says how many lines show.
An ASSUMPTION to confirm with the vendor too: that Acos shows the Dialogmelding of a message
of our own type ``IP_PLAN`` (not in code list 8279) at all.

A notice longer than the field takes: the text is never shortened silently, and the facts above are
never shortened at all. Only the need text, the one long free text, is cut, at a word
boundary, and ends with the visible marker ``[forkortet: se fullstendig melding hos
avsender]``; the delivery's detail says so for the operator. This serves the KE better than
refusing: it learns of the person and what was asked at once, sees that the text is cut and
whom to call (the contact person stays in the text), where a refusal would leave it with
nothing until the hospital had rewritten and resent. Only when the facts alone do not fit is
the notice refused (T99, not retried), since then no honest shortened text exists.
"""

from __future__ import annotations

from lxml import etree

from adapters.nhn_msh import Built, NhnMsh, plan_document, seed_from_directory
from adapters.text_limits import cut_at_word
from gateway.delivery import AdapterContext, DeliveryFailed
from gateway.delivery_policy import Cause
from gateway.domain.content import Content
from gateway.domain.model import NeedNotice
from gateway.domain.plan import PlanStatusMessage
from mappings.outbound import to_msghead
from mappings.plo import namespaces as ns
from mappings.plo.msghead import Party
from mappings.plo.notice import notice_to_msghead

NAME = "acos"
#: characters the vendor's text field holds (assumed; see above)
TEXT_LIMIT = 4000
MARKER = "[forkortet: se fullstendig melding hos avsender]"

_H = f"{{{ns.XHTML}}}"
_TEXT_PATH = f".//{{{ns.DIALOG_1_1}}}Notat/{{{ns.DIALOG_1_1}}}TekstNotatInnhold/{_H}div"
#: the labels ``mappings/plo/dialog.py`` writes for the lines this profile looks for
_NEED_LABEL = "Behov: "
_CONSENT_LABEL = "Samtykke: "


def document(
    content: Content,
    msg_id: str,
    receiver: Party,
    structured: bool,
    *,
    limit: int = TEXT_LIMIT,
) -> Built:
    """The MsgHead with every fact in its readable text, within ``limit``: a notice as text
    only, a plan as text beside its structured document (see above)."""
    if isinstance(content, PlanStatusMessage):
        return Built(to_msghead(content, msg_id=msg_id, receiver=receiver))  # text already
    if not isinstance(content, NeedNotice):
        return plan_document(content, msg_id, receiver, text=True, limit=limit)
    notice = content
    root = notice_to_msghead(notice, msg_id=msg_id, receiver=receiver, structured=False)
    div = root.find(_TEXT_PATH)
    if div is None:
        raise DeliveryFailed(
            Cause.ADAPTER_ERROR, "the Dialogmelding has no readable text to complete"
        )
    _complete(div, notice)
    note = _fit(div, limit)
    return Built(root, note)


def visible_text(div: etree._Element) -> str:
    """The text as the vendor counts it (assumed): paragraphs' text, one line break between."""
    return "\n".join("".join(p.itertext()) for p in div)


def _line(label: str, value: str) -> etree._Element:
    p = etree.Element(_H + "p", nsmap={None: ns.XHTML})
    b = etree.SubElement(p, _H + "b")
    b.text = f"{label}: "
    b.tail = value
    return p


def _labelled(div: etree._Element, label: str) -> etree._Element | None:
    for p in div:
        b = p.find(_H + "b")
        if b is not None and b.text == label:
            return p
    return None


def _complete(div: etree._Element, notice: NeedNotice) -> None:
    consent_lines = []
    if notice.consent is not None:
        if notice.consent.lacks_capacity_reason:
            consent_lines.append(
                _line(
                    "Hvorfor pasienten ikke kan samtykke selv",
                    notice.consent.lacks_capacity_reason,
                )
            )
        if notice.consent.reference:
            consent_lines.append(_line("Samtykkets referanse", notice.consent.reference))
    consent = _labelled(div, _CONSENT_LABEL)
    if consent is not None:
        for offset, line in enumerate(consent_lines, start=1):
            div.insert(div.index(consent) + offset, line)
    else:
        div.extend(consent_lines)
    div.append(_line("Avsenders referanse", notice.sender_message_id))


def _fit(div: etree._Element, limit: int) -> str | None:
    """Shorten the need text, visibly, when the text is longer than ``limit``."""
    text = visible_text(div)
    if len(text) <= limit:
        return None
    need_p = _labelled(div, _NEED_LABEL)
    b = need_p.find(_H + "b") if need_p is not None else None
    need = b.tail if b is not None and b.tail else ""
    budget = limit - (len(text) - len(need)) - len(MARKER) - 1
    if b is None or budget < 1:
        raise DeliveryFailed(
            Cause.CLIENT_ERROR,
            f"the notice's readable text does not fit the {limit} characters the platform "
            "takes, even with the need text shortened",
            code="T99",
        )
    b.tail = f"{cut_at_word(need, budget)} {MARKER}"
    return (
        f"the need text was shortened to fit the platform's {limit}-character text field "
        "(marked in the text)"
    )


def create(context: AdapterContext) -> NhnMsh:
    adapter = NhnMsh(context, name=NAME, structured=False, build=document)
    seed_from_directory(adapter, context)
    return adapter
