"""``samspill``: the Samspill kommune platform, a vendor profile of ``fhir_rest``.

Interface and content: the same as ``fhir_rest`` (``adapters/fhir_rest.py``): FHIR R4 messaging,
``POST {base_url}/$process-message`` with the notice's message Bundle
(``mappings/fhir/notice.py``: MessageHeader, sender Organizations, Practitioner, Patient,
CarePlan, Consent, RelatedPerson), Bundle.id = the gateway's message id, answers read the same
way, the same settings.

Field limit (assumed until the vendor's interface description says otherwise): Samspill
stores text fields of at most 2000 characters. The only free text of a notice that can be
that long is the need (CarePlan.description); names, codes and references are far below.
A longer need is cut at the last word boundary that leaves room for the marker ``" […]"``,
and the full, unshortened text goes with it in ``CarePlan.note[0].text`` (Annotation.text is
``markdown``, which R4 does not limit), so the case worker can still read all of it and
nothing the hospital wrote is lost. ``Delivered.detail`` says that it was cut. Notices within
the limit are posted exactly as ``fhir_rest`` posts them.

A plan transfer has many free texts (forskrift § 19: needs, resources, goals, what each
participant does and contributes, measures with their scope and how they are carried out,
why a person cannot consent, cooperation, why a plan was closed). The same limit applies to
each, the same way: a longer one is cut with ``" […]"`` where the mapping puts it, and its
full text goes into ``CarePlan.note`` as one Annotation per cut field, labelled for the
reader ("Tiltak 2, gjennomføring (hele teksten): ..."), so the case worker reads all of it and
the detail names the fields cut (by canonical path, never by value). A plan whose other text
(a name, a phone number, a reference) is that long is refused (T99, final): cutting a name or
a reference would change what it points at, and no note can stand in for it. Plans within the
limit are posted exactly as ``fhir_rest`` posts them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.fhir_rest import Built, FhirRest, message_bundle
from adapters.text_limits import cut_at_word
from gateway.delivery import AdapterContext, DeliveryFailed
from gateway.delivery_policy import Cause
from gateway.domain.content import Content
from gateway.domain.plan import PlanStatusMessage, PlanTransfer
from mappings.outbound import to_fhir

NAME = "samspill"
#: the longest text Samspill stores in one field (characters)
TEXT_LIMIT = 2000
CUT_MARKER = " […]"


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` if it fits, else cut at a word boundary with :data:`CUT_MARKER`, ≤ ``limit``.

    A text with no space in reach (one very long word) is cut mid-word: within the limit
    matters more than a clean break.
    """
    if len(text) <= limit:
        return text
    return cut_at_word(text, limit - len(CUT_MARKER)) + CUT_MARKER


def samspill_bundle(content: Content, destination: str) -> Built:
    if isinstance(content, PlanTransfer):
        return plan_bundle(content, destination)
    if isinstance(content, PlanStatusMessage):
        return message_bundle(content, destination)  # no text long enough to cut
    notice = content
    built = message_bundle(notice, destination)
    description = shorten(notice.need)
    if description == notice.need:
        return built
    bundle = copy.deepcopy(built.bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource.get("resourceType") == "CarePlan":
            resource["description"] = description
            resource["note"] = [{"text": notice.need}]
    return Built(
        bundle,
        f"the need was cut to {TEXT_LIMIT} characters for {NAME}; the full text is in "
        "CarePlan.note",
    )


# --------------------------------------------------------------------------- plans

#: how many cut fields the detail names one by one (the rest are counted)
_NAMED_IN_DETAIL = 10
NOTE_SUFFIX = " (hele teksten): "


@dataclass(frozen=True)
class Cut:
    """One plan text cut to the limit: where it is, what the reader calls it, all of it."""

    #: canonical path with indexes only (``plan.measures[1].how``): it names no value
    path: str
    label: str
    full: str

    @property
    def note(self) -> str:
        """The Annotation text that keeps the full text."""
        return f"{self.label}{NOTE_SUFFIX}{self.full}"


def cut_plan(transfer: PlanTransfer) -> tuple[PlanTransfer, list[Cut]]:
    """The transfer with every free text of the plan within :data:`TEXT_LIMIT`, and what was
    cut. Raises DeliveryFailed (T99) when another text is longer than the limit."""
    data = transfer.model_dump()
    plan = data["plan"]
    cuts: list[Cut] = []

    def cut(owner: dict[str, Any], key: str, path: str, label: str) -> None:
        value = owner.get(key)
        if isinstance(value, str) and len(value) > TEXT_LIMIT:
            owner[key] = shorten(value)
            cuts.append(Cut(path, label, value))

    cut(plan, "closed_reason", "plan.closed_reason", "Grunn til at planen ble avsluttet")
    for field, label in (("needs", "Behov"), ("resources", "Ressurs")):
        texts = {str(n): value for n, value in enumerate(plan[field])}
        for n in list(texts):
            cut(texts, n, f"plan.{field}[{n}]", f"{label} {int(n) + 1}")
        plan[field] = list(texts.values())
    for i, goal in enumerate(plan["goals"]):
        cut(goal, "description", f"plan.goals[{i}].description", f"Mål {i + 1}")
    for i, person in enumerate(plan["participants"]):
        where, label = f"plan.participants[{i}]", f"Deltaker {i + 1}"
        cut(person, "role", f"{where}.role", f"{label}, rolle")
        cut(person, "contribution", f"{where}.contribution", f"{label}, bidrag")
    for i, measure in enumerate(plan["measures"]):
        where, label = f"plan.measures[{i}]", f"Tiltak {i + 1}"
        cut(measure, "description", f"{where}.description", label)
        cut(measure, "scope", f"{where}.scope", f"{label}, omfang")
        cut(measure, "how", f"{where}.how", f"{label}, gjennomføring")
    reason = "hvorfor pasienten ikke kan samtykke selv"
    cut(
        plan["consent"],
        "lacks_capacity_reason",
        "plan.consent.lacks_capacity_reason",
        f"Samtykke til planen, {reason}",
    )
    if plan["sharing"] is not None:
        cut(
            plan["sharing"],
            "lacks_capacity_reason",
            "plan.sharing.lacks_capacity_reason",
            f"Samtykke til deling av taushetsbelagte opplysninger, {reason}",
        )
    for i, cooperation in enumerate(plan["cooperation"]):
        cut(cooperation, "description", f"plan.cooperation[{i}].description", f"Samarbeid {i + 1}")
    for path in _too_long(data, ""):
        raise DeliveryFailed(
            Cause.CLIENT_ERROR,
            f"{path} is longer than the {TEXT_LIMIT} characters {NAME} stores, and is no free "
            "text that can be cut with its full text kept beside it",
            code="T99",
        )
    return PlanTransfer.model_validate(data), cuts


def _too_long(value: object, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if len(value) > TEXT_LIMIT:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _too_long(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _too_long(item, f"{path}[{i}]")


def plan_bundle(transfer: PlanTransfer, destination: str) -> Built:
    """The plan's Bundle with long free texts cut and kept whole in ``CarePlan.note``."""
    shortened, cuts = cut_plan(transfer)
    if not cuts:
        return message_bundle(transfer, destination)
    bundle = to_fhir(shortened, destination=destination)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource.get("resourceType") == "CarePlan":
            resource["note"] = [{"text": c.note} for c in cuts]
    named = ", ".join(c.path for c in cuts[:_NAMED_IN_DETAIL])
    if len(cuts) > _NAMED_IN_DETAIL:
        named += f" and {len(cuts) - _NAMED_IN_DETAIL} more"
    return Built(
        bundle,
        f"{len(cuts)} plan text field(s) cut to {TEXT_LIMIT} characters for {NAME} ({named}); "
        "the full texts are in CarePlan.note",
    )


def create(context: AdapterContext) -> FhirRest:
    return FhirRest(context, name=NAME, build=samspill_bundle)
