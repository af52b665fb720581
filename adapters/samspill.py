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
"""

from __future__ import annotations

import copy
import re

from adapters.fhir_rest import Built, FhirRest, message_bundle
from gateway.delivery import AdapterContext
from gateway.domain.model import NeedNotice

NAME = "samspill"
#: the longest text Samspill stores in one field (characters)
TEXT_LIMIT = 2000
CUT_MARKER = " […]"
_LAST_SPACE = re.compile(r"\s\S*\Z")


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` if it fits, else cut at a word boundary with :data:`CUT_MARKER`, ≤ ``limit``.

    A text with no space in reach (one very long word) is cut mid-word: within the limit
    matters more than a clean break.
    """
    if len(text) <= limit:
        return text
    room = limit - len(CUT_MARKER)
    head = text[:room]
    if not text[room].isspace():
        # the cut falls inside a word: back to the whitespace before it
        boundary = _LAST_SPACE.search(head)
        if boundary is not None and boundary.start() > 0:
            head = head[: boundary.start()]
    return head.rstrip() + CUT_MARKER


def samspill_bundle(notice: NeedNotice, destination: str) -> Built:
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


def create(context: AdapterContext) -> FhirRest:
    return FhirRest(context, name=NAME, build=samspill_bundle)
