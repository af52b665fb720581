"""A plan transfer as text a case worker reads, for platforms whose EPJ shows the Dialogmelding
only (``nhn_msh`` with ``structured = false``, ``acos``).

A whole plan has no text-only form that a receiver could turn back into the plan, and such an
EPJ does not read our IndividuellPlan content: sent as ``mappings/outbound.to_msghead`` writes
it, the plan would reach the KE as nothing it can see. So these profiles send both: a
Dialogmelding 1.1 with every forskrift § 19 item in words, for the reader, and beside it the
structured IndividuellPlan, which keeps every field for the record and for the plan's next
move. The gateway never reads a plan back from prose.

A vendor whose text field is limited gets the text cut at a line (the first line that does
not fit is cut at a word boundary), with a visible line saying so and where the rest is; the
lines that say which plan it is, who sent it and that the structured document holds all of it
are never cut. :class:`PlanText` says what happened, for ``Delivered.detail``.

Lives here rather than in ``mappings/plo`` because only these delivery profiles need it: the
gateway's own formats carry the plan structured.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

from lxml import etree

from adapters.text_limits import cut_at_word
from gateway.domain.model import ConsentAttestation, ConsentGiver, CoordinatorKind, Organisation
from gateway.domain.plan import (
    Measure,
    Participant,
    ParticipantKind,
    PlanStatus,
    PlanTransfer,
    SharingConsent,
)
from mappings.plo import namespaces as ns
from mappings.plo.dialog import TOPIC

_M = f"{{{ns.MSGHEAD}}}"
_D = f"{{{ns.DIALOG_1_1}}}"
_H = f"{{{ns.XHTML}}}"

#: what the Dialogmelding's Tema says
SUBJECT = "Individuell plan (overføring)"
STRUCTURED_LABEL = "Strukturert plan"
STRUCTURED_TEXT = (
    "hele planen, med alle punkter i forskriften § 19, følger også som strukturert dokument "
    "(IndividuellPlan, ip-melding v1)"
)
CUT_LABEL = "Forkortet"
CUT_TEXT = (
    "teksten er kortet ned til det mottakersystemet tar; resten av planen står i det "
    "strukturerte dokumentet (IndividuellPlan) og hos avsender"
)
#: ends a line cut within its text
CUT_MARKER = " […]"
#: the shortest a cut line is made (characters, label included): shorter says nothing
_MIN_LINE = 100

_KIND_TEXT = {
    ParticipantKind.PERSON: "personen selv",
    ParticipantKind.NEXT_OF_KIN: "pårørende",
    ParticipantKind.PROFESSIONAL: "helse- og omsorgspersonell",
    ParticipantKind.OTHER: "annen deltaker",
}
_COORDINATOR_TEXT = {
    CoordinatorKind.KOORDINATOR: "koordinator",
    CoordinatorKind.BARNEKOORDINATOR: "barnekoordinator",
}
_GIVER_TEXT = {
    ConsentGiver.PERSON: "pasienten selv",
    ConsentGiver.NEXT_OF_KIN: "pårørende (pasienten mangler samtykkekompetanse)",
    ConsentGiver.PARENTS: "foreldre / de med foreldreansvar",
}


@dataclass(frozen=True)
class Line:
    """One paragraph of the text: ``<p><b>label: </b>value</p>``."""

    label: str
    value: str

    @property
    def text(self) -> str:
        """As the reader sees it (and a vendor counts it)."""
        return f"{self.label}: {self.value}"


@dataclass(frozen=True)
class Lines:
    """The plan's text: ``head`` and ``tail`` are never cut, ``body`` holds the § 19 items."""

    head: tuple[Line, ...]
    body: tuple[Line, ...]
    tail: tuple[Line, ...]


@dataclass(frozen=True)
class PlanText:
    """The readable text as written, and whether (and how much of) it had to be cut."""

    div: etree._Element
    #: body lines in the plan's text, and how many of them show whole
    lines: int
    whole: int
    cut: bool


class TextTooLong(ValueError):
    """Even the lines that are never cut do not fit the receiver's text field."""


# --------------------------------------------------------------------------- the words


def _organisation(org: Organisation) -> str:
    ids = [f"HER-id {org.her_id}"] if org.her_id is not None else []
    ids += [f"org.nr. {org.orgnr}"] if org.orgnr is not None else []
    return f"{org.name} ({', '.join(ids)})" if ids else org.name


def _consent(given: ConsentAttestation | SharingConsent) -> list[str]:
    parts = [f"gitt av {_GIVER_TEXT[given.given_by]} {given.given_on.isoformat()}"]
    if given.lacks_capacity_reason:
        parts.append(f"hvorfor pasienten ikke kan samtykke selv: {given.lacks_capacity_reason}")
    if given.reference:
        parts.append(f"referanse: {given.reference}")
    return parts


def _participant(p: Participant) -> str:
    head = f"{p.name} ({_KIND_TEXT[p.kind]}{f', {p.role}' if p.role else ''})"
    parts = [head]
    if p.hpr_nr is not None:
        parts.append(f"HPR-nummer {p.hpr_nr}")
    if p.organisation is not None:
        parts.append(_organisation(p.organisation))
    if p.phone:
        parts.append(f"tlf. {p.phone}")
    if p.email:
        parts.append(f"e-post {p.email}")
    if p.contribution:
        parts.append(f"bidrar med: {p.contribution}")
    return "; ".join(parts)


def _period(start: dt.date | None, end: dt.date | None) -> str | None:
    if start is None and end is None:
        return None
    return " ".join(
        part
        for part in (
            f"fra {start.isoformat()}" if start else None,
            f"til {end.isoformat()}" if end else None,
        )
        if part
    )


def _measure(m: Measure, people: dict[str, str], goal_numbers: dict[str, int]) -> str:
    parts = [m.description]
    if m.scope:
        parts.append(f"omfang: {m.scope}")
    if m.owner:
        parts.append(f"ansvarlig: {people[m.owner]}")
    if m.how:
        parts.append(f"gjennomføring: {m.how}")
    if m.goals:
        parts.append("mål: " + ", ".join(str(goal_numbers[g]) for g in m.goals))
    period = _period(m.start, m.end)
    if period:
        parts.append(period)
    return "; ".join(parts)


def plan_lines(transfer: PlanTransfer) -> Lines:
    """Every field of the plan in words, one line per § 19 entry, in the regulation's order."""
    plan = transfer.plan
    people = {p.key: p.name for p in plan.participants}
    goal_numbers = {g.key: i for i, g in enumerate(plan.goals, start=1)}
    version = f"plan-id {plan.plan_id}, versjon {plan.version} (versjons-id {plan.version_id}"
    version += f", forrige versjon {plan.previous_version_id})" if plan.previous_version_id else ")"
    head = (Line("Individuell plan", version),)

    body: list[Line] = []
    if plan.status is PlanStatus.ACTIVE:
        body.append(Line("Status", "aktiv"))
    else:
        body.append(Line("Status", f"avsluttet; grunn: {plan.closed_reason}"))
    body.append(Line("Ansvarlig for planen", _organisation(plan.responsible)))
    # g)
    body.append(Line("Planperiode", _period(plan.period_start, plan.period_end) or ""))
    if plan.evaluations:
        dates = ", ".join(d.isoformat() for d in plan.evaluations)
        body.append(Line("Evalueringstidspunkter", dates))
    # a)
    body += [Line("Behov", need) for need in plan.needs]
    body += [Line("Ressurs", resource) for resource in plan.resources]
    for i, g in enumerate(plan.goals, start=1):
        target = f" (måldato {g.target_date.isoformat()})" if g.target_date else ""
        body.append(Line(f"Mål {i}", f"{g.description}{target}"))
    # b) and d)
    body += [
        Line(f"Deltaker {i}", _participant(p)) for i, p in enumerate(plan.participants, start=1)
    ]
    # c)
    if plan.coordinator:
        c = plan.coordinator
        body.append(Line("Koordinator", f"{people[c.participant]} ({_COORDINATOR_TEXT[c.kind]})"))
    # e) and f)
    body += [
        Line(f"Tiltak {i}", _measure(m, people, goal_numbers))
        for i, m in enumerate(plan.measures, start=1)
    ]
    # h)
    body.append(Line("Samtykke til planen", "; ".join(_consent(plan.consent))))
    if plan.sharing:
        s = plan.sharing
        shared = ", ".join(people[k] for k in s.participants) or "ingen navngitte deltakere"
        body.append(
            Line(
                "Samtykke til å dele taushetsbelagte opplysninger",
                "; ".join([*_consent(s), f"deles med: {shared}"]),
            )
        )
    # i)
    for i, co in enumerate(plan.cooperation, start=1):
        description = f": {co.description}" if co.description else ""
        body.append(Line(f"Samarbeid {i}", f"{_organisation(co.agency)}{description}"))
    if transfer.new_kommune_nr:
        body.append(Line("Ny kommune", transfer.new_kommune_nr))

    sender = transfer.sender
    unit = f"{_organisation(sender.department)}, " if sender.department else ""
    tail = [Line("Avsender", f"{unit}{_organisation(sender.organisation)}")]
    if sender.contact:
        phone = f", tlf. {sender.contact.phone}" if sender.contact.phone else ""
        tail.append(Line("Kontaktperson", f"{sender.contact.name}{phone}"))
    tail.append(Line("Avsenders referanse", transfer.sender_message_id))
    tail.append(Line(STRUCTURED_LABEL, STRUCTURED_TEXT))
    return Lines(head, tuple(body), tuple(tail))


# --------------------------------------------------------------------------- fitting


def text_length(lines: list[Line]) -> int:
    """Characters as the reader sees them: the lines, one line break between."""
    return sum(len(line.text) for line in lines) + max(len(lines) - 1, 0)


def _capped(line: Line, cap: int) -> Line:
    """``line`` if its text is at most ``cap`` characters, else its value cut to fit, marked."""
    if len(line.text) <= cap:
        return line
    room = cap - len(line.label) - 2 - len(CUT_MARKER)
    return Line(line.label, cut_at_word(line.value, room) + CUT_MARKER)


def _cost(body: list[Line], cap: int) -> int:
    """Characters ``body`` takes with each line capped, a line break before each."""
    return sum(min(len(line.text), cap) + 1 for line in body)


def fit(lines: Lines, limit: int | None) -> tuple[list[Line], int, bool]:
    """The lines to write within ``limit`` characters, how many body lines show whole, and
    whether anything was cut. Raises :class:`TextTooLong` when the uncut lines alone do not fit.

    The longest lines are cut first, all to the same length, so one very long text (a
    measure described over pages) does not push the consent or the cooperation out of the
    text: every item keeps at least its start. Only when even that is too much are lines
    left out, from the end.
    """
    every = [*lines.head, *lines.body, *lines.tail]
    if limit is None or text_length(every) <= limit:
        return every, len(lines.body), False
    marker = Line(CUT_LABEL, CUT_TEXT)
    fixed = [*lines.head, marker, *lines.tail]
    budget = limit - text_length(fixed)
    if budget < 0:
        raise TextTooLong(f"the plan's fixed lines need more than {limit} characters")
    body = list(lines.body)
    while body and _cost(body, _MIN_LINE) > budget:
        body.pop()
    longest = max((len(line.text) for line in body), default=0)
    low, high = min(_MIN_LINE, longest), longest
    while low < high:  # the longest cap that fits
        middle = (low + high + 1) // 2
        if _cost(body, middle) <= budget:
            low = middle
        else:
            high = middle - 1
    kept = [_capped(line, low) for line in body]
    whole = sum(1 for line in body if len(line.text) <= low)
    return [*lines.head, *kept, marker, *lines.tail], whole, True


# --------------------------------------------------------------------------- writing


def _paragraph(line: Line) -> etree._Element:
    p = etree.Element(_H + "p", nsmap={None: ns.XHTML})
    b = etree.SubElement(p, _H + "b")
    b.text = f"{line.label}: "
    b.tail = line.value
    return p


def plan_text(transfer: PlanTransfer, limit: int | None = None) -> PlanText:
    """The plan as XHTML paragraphs within ``limit`` characters (None: no limit)."""
    lines = plan_lines(transfer)
    chosen, whole, cut = fit(lines, limit)
    div = etree.Element(_H + "div", nsmap={None: ns.XHTML})
    div.extend(_paragraph(line) for line in chosen)
    return PlanText(div, len(lines.body), whole, cut)


def _d(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.Element(_D + tag, attrib=attrs, nsmap={None: ns.DIALOG_1_1})
    if text is not None:
        element.text = text
    return element


def plan_dialog(transfer: PlanTransfer, text: PlanText) -> etree._Element:
    """Dialogmelding 1.1 with one Notat holding the plan's text."""
    notat = _d("Notat")
    notat.append(_d("TemaKodet", V=TOPIC[0], S=ns.NOTAT_TOPIC, DN=TOPIC[1]))
    notat.append(_d("Tema", f"{SUBJECT}, versjon {transfer.plan.version}"))
    content = _d("TekstNotatInnhold")
    content.append(text.div)
    notat.append(content)
    notat.append(_d("DatoNotat", transfer.sent_at.date().isoformat()))
    root = _d("Dialogmelding")
    root.append(notat)
    return root


def add_text_document(root: etree._Element, dialog: etree._Element) -> None:
    """Put ``dialog`` in ``root`` (a MsgHead) as its first Document, before the structured
    one, as a notice has it: a reader's EPJ shows the first document."""
    first = root.find(_M + "Document")
    if first is None:
        raise ValueError("the MsgHead has no Document to put the text beside")
    document = copy.deepcopy(first)
    content = document.find(f"{_M}RefDoc/{_M}Content")
    if content is None:
        raise ValueError("the MsgHead's Document holds no XML content")
    for child in list(content):
        content.remove(child)
    content.append(dialog)
    first.addprevious(document)
