"""A need-for-IP notice as Dialogmelding 1.1 (helsefaglig dialog): what any EPJ can show.

Every kommune EPJ on the health network reads DIALOG_HELSEFAGLIG, few read our structured
content. The notice is therefore always written as a ``Notat`` too: a readable XHTML text with
every field of the notice, topic 7322/6 (henvendelse om pasient), and the hospital's contact in
``RollerRelatertNotat`` with role 9034/8 (koordinator for individuell plan). It is written
only: the gateway reads a notice from the structured content, never from prose.
"""

from __future__ import annotations

from lxml import etree

from gateway.domain.model import ConsentGiver, NeedNotice, NoticeKind
from mappings.plo import namespaces as ns

_D = f"{{{ns.DIALOG_1_1}}}"
_F = f"{{{ns.FK1}}}"
_H = f"{{{ns.XHTML}}}"
_NSMAP = {None: ns.DIALOG_1_1, "fk1": ns.FK1}

TOPIC = ("6", "Henvendelse om pasient")
COORDINATOR_ROLE = ("8", "Koordinator individuell plan")
_SERVICE_TEXT = {
    NoticeKind.INDIVIDUELL_PLAN: "individuell plan",
    NoticeKind.KOORDINATOR: "koordinator",
    NoticeKind.BARNEKOORDINATOR: "barnekoordinator",
}
_GIVER_TEXT = {
    ConsentGiver.PERSON: "pasienten selv",
    ConsentGiver.NEXT_OF_KIN: "pårørende (pasienten mangler samtykkekompetanse)",
    ConsentGiver.PARENTS: "foreldre / de med foreldreansvar",
}


def _d(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.Element(_D + tag, attrib=attrs, nsmap=_NSMAP)
    if text is not None:
        element.text = text
    return element


def topic_line(notice: NeedNotice) -> str:
    services = ", ".join(_SERVICE_TEXT[k] for k in notice.requested)
    return f"Melding om behov for {services}"


def readable_text(notice: NeedNotice) -> etree._Element:
    """The notice as XHTML paragraphs, in Norwegian, as a case worker reads it."""
    div = etree.Element(_H + "div", nsmap={None: ns.XHTML})

    def line(label: str, value: str) -> None:
        p = etree.SubElement(div, _H + "p")
        b = etree.SubElement(p, _H + "b")
        b.text = f"{label}: "
        b.tail = value

    line("Ønsket", ", ".join(_SERVICE_TEXT[k] for k in notice.requested))
    line("Behov", notice.need)
    line("Haster", "ja" if notice.urgent else "nei")
    line("Pårørende deltar", "ja" if notice.next_of_kin_involved else "nei")
    if notice.existing_coordinator:
        line("Har allerede koordinator fra kommunen", "ja (en familie har én koordinator)")
    if notice.health_trust_takes_part:
        line("Helseforetaket deltar", "ja (helseforetakets koordinerende enhet får også meldingen)")
    if notice.interpreter_language:
        line("Trenger tolk, språk", notice.interpreter_language)
    if notice.consent:
        c = notice.consent
        line("Samtykke", f"gitt av {_GIVER_TEXT[c.given_by]} {c.given_on.isoformat()}")
    else:
        line("Samtykke", "ikke registrert; meldingen holdes til samtykke foreligger")
    sender = notice.sender
    unit = f"{sender.department.name}, " if sender.department else ""
    line("Avsender", f"{unit}{sender.organisation.name}")
    if sender.contact:
        phone = f", tlf. {sender.contact.phone}" if sender.contact.phone else ""
        line("Kontaktperson", f"{sender.contact.name}{phone}")
    return div


def dialog_notice(notice: NeedNotice) -> etree._Element:
    """Dialogmelding 1.1 with one Notat for the notice."""
    notat = _d("Notat")
    notat.append(_d("TemaKodet", V=TOPIC[0], S=ns.NOTAT_TOPIC, DN=TOPIC[1]))
    notat.append(_d("Tema", topic_line(notice)))
    content = _d("TekstNotatInnhold")
    content.append(readable_text(notice))
    notat.append(content)
    notat.append(_d("DatoNotat", notice.sent_at.date().isoformat()))
    if notice.sender.contact:
        notat.append(_coordinator(notice))
    root = _d("Dialogmelding")
    root.append(notat)
    return root


def _coordinator(notice: NeedNotice) -> etree._Element:
    contact = notice.sender.contact
    assert contact is not None
    roles = _d("RollerRelatertNotat")
    roles.append(
        _d("RoleToPatient", V=COORDINATOR_ROLE[0], S=ns.ROLE_TO_PATIENT, DN=COORDINATOR_ROLE[1])
    )
    person = _d("HealthcareProfessional")
    given, _, family = contact.name.rpartition(" ")
    if given:
        person.append(_d("FamilyName", family))
        person.append(_d("GivenName", given))
    else:
        person.append(_d("FamilyName", family))
    if contact.phone:
        telecom = _d("TeleCom")
        address = etree.SubElement(telecom, _F + "TeleAddress", nsmap={"fk1": ns.FK1})
        address.set("V", f"tel:{_tel(contact.phone)}")
        person.append(telecom)
    roles.append(person)
    return roles


def _tel(phone: str) -> str:
    """A tel: URI body (RFC 3966): digits and a leading +, the visual separators dropped."""
    kept = "".join(c for c in phone if c.isdigit() or c == "+")
    return kept or "0"
