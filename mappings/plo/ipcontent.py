"""Our structured IP content (schemas/ip-melding-v1.xsd) <-> the canonical model.

The element names follow the schema one to one; the schema documents each. What MsgHead
already carries (patient, sender and receiver organisations, message id and time) is not
repeated here, except what MsgHead cannot hold: the sender's own message id when a relay's
GUID stands in MsgId, a department without HER-id or organisation number, the HF contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from lxml import etree
from pydantic import ValidationError

from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    Contact,
    CoordinatorKind,
    NoticeKind,
    Organisation,
)
from gateway.domain.plan import (
    Cooperation,
    Coordinator,
    Goal,
    Measure,
    Participant,
    ParticipantKind,
    Plan,
    PlanStatus,
    SharingConsent,
)
from gateway.domain.receipt import Refused
from mappings.plo import namespaces as ns
from mappings.plo.xmlsafe import text_of

_P = f"{{{ns.IP}}}"
NOTICE_ROOT = _P + "BehovForIP"
PLAN_ROOT = _P + "IndividuellPlan"
TRANSFER = _P + "Overforing"
T = TypeVar("T")


# --------------------------------------------------------------------------- writing


def _e(
    tag: str, *children: etree._Element | None, text: str | None = None, **attrs: str
) -> etree._Element:
    element = etree.Element(_P + tag, attrib=attrs, nsmap={None: ns.IP})
    if text is not None:
        element.text = text
    element.extend(c for c in children if c is not None)
    return element


def _opt(tag: str, value: object | None) -> etree._Element | None:
    if value is None:
        return None
    return _e(tag, text=_xml_value(value))


def _xml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def organisation(tag: str, org: Organisation | None) -> etree._Element | None:
    if org is None:
        return None
    return _e(
        tag,
        _e("Navn", text=org.name),
        _opt("HerId", org.her_id),
        _opt("Organisasjonsnummer", org.orgnr),
    )


def contact(contact_: Contact | None) -> etree._Element | None:
    if contact_ is None:
        return None
    return _e("Kontakt", _e("Navn", text=contact_.name), _opt("Telefon", contact_.phone))


def consent(tag: str, attestation: ConsentAttestation | None) -> etree._Element | None:
    if attestation is None:
        return None
    return _e(tag, *consent_parts(attestation))


def consent_parts(attestation: ConsentAttestation) -> list[etree._Element | None]:
    return [
        _e("GittAv", text=attestation.given_by.value),
        _opt("ManglendeSamtykkekompetanse", attestation.lacks_capacity_reason),
        _e("Dato", text=attestation.given_on.isoformat()),
        _opt("Referanse", attestation.reference),
    ]


def notice_content(
    *,
    sender_message_id: str | None,
    source_endpoint: str | None,
    requested: Iterable[NoticeKind],
    need: str,
    urgent: bool,
    next_of_kin_involved: bool,
    existing_coordinator: bool,
    health_trust_takes_part: bool,
    interpreter_language: str | None,
    contact_: Contact | None,
    department: Organisation | None,
    attestation: ConsentAttestation | None,
) -> etree._Element:
    return _e(
        "BehovForIP",
        _opt("AvsendersMeldingsId", sender_message_id),
        _opt("Avsenderendepunkt", source_endpoint),
        *(_e("Tjeneste", text=kind.value) for kind in requested),
        _e("Behov", text=need),
        _e("Haster", text=_xml_value(urgent)),
        _e("PaarorendeDeltar", text=_xml_value(next_of_kin_involved)),
        _e("HarKoordinator", text="true") if existing_coordinator else None,
        _e("HelseforetakDeltar", text="true") if health_trust_takes_part else None,
        _opt("Tolkespraak", interpreter_language),
        contact(contact_),
        organisation("Avdeling", department),
        consent("Samtykke", attestation),
    )


def plan_content(plan: Plan, transfer: etree._Element | None = None) -> etree._Element:
    root = _e(
        "IndividuellPlan",
        transfer,
        _e("PlanId", text=plan.plan_id),
        _e("Versjon", text=str(plan.version)),
        _e("VersjonsId", text=plan.version_id),
        _opt("ForrigeVersjonsId", plan.previous_version_id),
        _e("Status", text=plan.status.value),
        _opt("AvsluttetGrunn", plan.closed_reason),
        organisation("Ansvarlig", plan.responsible),
    )
    root.extend(_e("Behov", text=need) for need in plan.needs)
    root.extend(_e("Ressurs", text=resource) for resource in plan.resources)
    for goal in plan.goals:
        root.append(
            _e(
                "Maal",
                _e("Beskrivelse", text=goal.description),
                _opt("Maaldato", goal.target_date),
                noekkel=goal.key,
            )
        )
    for p in plan.participants:
        root.append(
            _e(
                "Deltaker",
                _e("Type", text=p.kind.value),
                _e("Navn", text=p.name),
                _opt("Rolle", p.role),
                _opt("HprNummer", p.hpr_nr),
                organisation("Organisasjon", p.organisation),
                _opt("Telefon", p.phone),
                _opt("Epost", p.email),
                _opt("Bidrag", p.contribution),
                noekkel=p.key,
            )
        )
    if plan.coordinator:
        root.append(
            _e(
                "Koordinator",
                _e("Type", text=plan.coordinator.kind.value),
                deltaker=plan.coordinator.participant,
            )
        )
    for m in plan.measures:
        root.append(
            _e(
                "Tiltak",
                _e("Beskrivelse", text=m.description),
                _opt("Omfang", m.scope),
                _e("Ansvarlig", deltaker=m.owner) if m.owner else None,
                _opt("Gjennomforing", m.how),
                *(_e("MaalRef", maal=g) for g in m.goals),
                _opt("Fra", m.start),
                _opt("Til", m.end),
                noekkel=m.key,
            )
        )
    root.append(
        _e("Periode", _e("Fra", text=plan.period_start.isoformat()), _opt("Til", plan.period_end))
    )
    root.extend(_e("Evaluering", text=d.isoformat()) for d in plan.evaluations)
    root.append(_e("Samtykke", *consent_parts(plan.consent)))
    if plan.sharing:
        s = plan.sharing
        root.append(
            _e(
                "DelingSamtykke",
                _e("GittAv", text=s.given_by.value),
                _opt("ManglendeSamtykkekompetanse", s.lacks_capacity_reason),
                _e("Dato", text=s.given_on.isoformat()),
                _opt("Referanse", s.reference),
                *(_e("DelesMed", deltaker=k) for k in s.participants),
            )
        )
    for c in plan.cooperation:
        root.append(
            _e("Samarbeid", organisation("Instans", c.agency), _opt("Beskrivelse", c.description))
        )
    return root


def transfer_content(
    *,
    sender_message_id: str | None,
    source_endpoint: str | None,
    new_kommune_nr: str | None,
    contact_: Contact | None,
    department: Organisation | None,
) -> etree._Element:
    return _e(
        "Overforing",
        _opt("AvsendersMeldingsId", sender_message_id),
        _opt("Avsenderendepunkt", source_endpoint),
        _opt("NyKommune", new_kommune_nr),
        contact(contact_),
        organisation("Avdeling", department),
    )


# --------------------------------------------------------------------------- reading
# The schema has accepted the element before these run: they read, the schema checked.


def _text(parent: etree._Element, tag: str) -> str | None:
    return text_of(parent.find(_P + tag))


def _must(parent: etree._Element, tag: str) -> str:
    """Text the schema requires; a document read without the schema check still fails clean."""
    text = _text(parent, tag)
    if text is None:
        raise Refused.one("T02", f"{etree.QName(parent).localname}/{tag} is missing")
    return text


def _texts(parent: etree._Element, tag: str) -> tuple[str, ...]:
    return tuple(t for t in (text_of(e) for e in parent.iterfind(_P + tag)) if t)


def _date(parent: etree._Element, tag: str) -> dt.date | None:
    text = _text(parent, tag)
    return None if text is None else _xsd_date(text)


def _xsd_date(text: str) -> dt.date:
    # xs:date may carry a zone ("2026-11-01Z", "2026-11-01+01:00"): the day is what counts
    return dt.date.fromisoformat(text[:10])


def _bool(parent: etree._Element, tag: str) -> bool:
    return _text(parent, tag) in ("true", "1")


def read_organisation(element: etree._Element | None) -> Organisation | None:
    if element is None:
        return None
    return Organisation.model_validate(
        {
            "name": _text(element, "Navn"),
            "her_id": _text(element, "HerId"),
            "orgnr": _text(element, "Organisasjonsnummer"),
        }
    )


def read_contact(parent: etree._Element) -> Contact | None:
    element = parent.find(_P + "Kontakt")
    if element is None:
        return None
    return Contact(name=_must(element, "Navn"), phone=_text(element, "Telefon"))


def read_consent(element: etree._Element | None) -> ConsentAttestation | None:
    if element is None:
        return None
    return ConsentAttestation(
        given_by=ConsentGiver(_must(element, "GittAv")),
        lacks_capacity_reason=_text(element, "ManglendeSamtykkekompetanse"),
        given_on=_xsd_date(_must(element, "Dato")),
        reference=_text(element, "Referanse"),
    )


def checked(read: Callable[[], T], what: str) -> T:
    """Run a reader; a value the canonical model refuses becomes a T02 naming the field."""
    try:
        return read()
    except ValidationError as e:
        fields = sorted(
            {".".join(str(p) for p in err["loc"]) for err in e.errors(include_input=False)}
        )
        raise Refused.one("T02", f"{what}: invalid {', '.join(fields)[:300]}") from None
    except ValueError:
        raise Refused.one("T02", f"{what}: a value cannot be read") from None


def read_notice_content(element: etree._Element) -> dict[str, Any]:
    """The notice's fields from BehovForIP (the caller adds what MsgHead holds)."""
    return {
        "sender_message_id": _text(element, "AvsendersMeldingsId"),
        "source_endpoint": _text(element, "Avsenderendepunkt"),
        "requested": tuple(NoticeKind(t) for t in _texts(element, "Tjeneste")),
        "need": _text(element, "Behov"),
        "urgent": _bool(element, "Haster"),
        "next_of_kin_involved": _bool(element, "PaarorendeDeltar"),
        "existing_coordinator": _bool(element, "HarKoordinator"),
        "health_trust_takes_part": _bool(element, "HelseforetakDeltar"),
        "interpreter_language": _text(element, "Tolkespraak"),
        "contact": read_contact(element),
        "department": read_organisation(element.find(_P + "Avdeling")),
        "consent": read_consent(element.find(_P + "Samtykke")),
    }


def read_transfer_content(element: etree._Element | None) -> dict[str, Any]:
    if element is None:
        return {}
    return {
        "sender_message_id": _text(element, "AvsendersMeldingsId"),
        "source_endpoint": _text(element, "Avsenderendepunkt"),
        "new_kommune_nr": _text(element, "NyKommune"),
        "contact": read_contact(element),
        "department": read_organisation(element.find(_P + "Avdeling")),
    }


def read_plan_content(element: etree._Element, patient: Any) -> Plan:
    """The plan from IndividuellPlan; ``patient`` comes from the MsgHead around it."""
    coordinator = None
    coord = element.find(_P + "Koordinator")
    if coord is not None:
        coordinator = Coordinator(
            participant=coord.get("deltaker", ""), kind=CoordinatorKind(_must(coord, "Type"))
        )
    sharing = None
    share = element.find(_P + "DelingSamtykke")
    if share is not None:
        sharing = SharingConsent(
            given_by=ConsentGiver(_must(share, "GittAv")),
            lacks_capacity_reason=_text(share, "ManglendeSamtykkekompetanse"),
            given_on=_xsd_date(_must(share, "Dato")),
            reference=_text(share, "Referanse"),
            participants=tuple(d.get("deltaker", "") for d in share.iterfind(_P + "DelesMed")),
        )
    period = element.find(_P + "Periode")
    assert period is not None  # required by the schema
    return Plan(
        plan_id=_must(element, "PlanId"),
        version=int(_must(element, "Versjon")),
        version_id=_must(element, "VersjonsId"),
        previous_version_id=_text(element, "ForrigeVersjonsId"),
        status=PlanStatus(_must(element, "Status")),
        closed_reason=_text(element, "AvsluttetGrunn"),
        patient=patient,
        responsible=read_organisation(element.find(_P + "Ansvarlig")),
        needs=_texts(element, "Behov"),
        resources=_texts(element, "Ressurs"),
        goals=tuple(
            Goal(
                key=g.get("noekkel", ""),
                description=_must(g, "Beskrivelse"),
                target_date=_date(g, "Maaldato"),
            )
            for g in element.iterfind(_P + "Maal")
        ),
        participants=tuple(_participant(p) for p in element.iterfind(_P + "Deltaker")),
        coordinator=coordinator,
        measures=tuple(_measure(m) for m in element.iterfind(_P + "Tiltak")),
        period_start=_date(period, "Fra"),
        period_end=_date(period, "Til"),
        evaluations=tuple(_xsd_date(t) for t in _texts(element, "Evaluering")),
        consent=read_consent(element.find(_P + "Samtykke")),
        sharing=sharing,
        cooperation=tuple(
            Cooperation(
                agency=read_organisation(c.find(_P + "Instans")),
                description=_text(c, "Beskrivelse"),
            )
            for c in element.iterfind(_P + "Samarbeid")
        ),
    )


def _participant(element: etree._Element) -> Participant:
    hpr = _text(element, "HprNummer")
    return Participant(
        key=element.get("noekkel", ""),
        kind=ParticipantKind(_must(element, "Type")),
        name=_must(element, "Navn"),
        role=_text(element, "Rolle"),
        hpr_nr=int(hpr) if hpr else None,
        organisation=read_organisation(element.find(_P + "Organisasjon")),
        phone=_text(element, "Telefon"),
        email=_text(element, "Epost"),
        contribution=_text(element, "Bidrag"),
    )


def _measure(element: etree._Element) -> Measure:
    owner = element.find(_P + "Ansvarlig")
    return Measure(
        key=element.get("noekkel", ""),
        description=_must(element, "Beskrivelse"),
        scope=_text(element, "Omfang"),
        owner=owner.get("deltaker") if owner is not None else None,
        how=_text(element, "Gjennomforing"),
        goals=tuple(r.get("maal", "") for r in element.iterfind(_P + "MaalRef")),
        start=_date(element, "Fra"),
        end=_date(element, "Til"),
    )
