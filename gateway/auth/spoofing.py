"""Does a message's sender match the caller's token? (issue 8: "a hospital department may send
only as its own organisation/HER-id")

A message names its sender twice over: the organisation (a health trust, a kommune's KE) and
perhaps its department, each by HER-id and/or organisasjonsnummer. The token names the
caller's organisations (HelseID's ``orgnr_parent`` and ``orgnr_child``). They match when
every organisasjonsnummer the sender is known by (as the message gives it, and as the
directory lists it for a HER-id the message gives) is one of the token's: a message naming
its own trust but another unit's HER-id as its department is a spoof too. A sender with no
organisasjonsnummer to be found cannot be told apart from a spoof, so it is refused as well:
every sending organisation needs an orgnr, in the message or in the directory.

Pure functions: the ingest reads the sender, the API decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, TypeAdapter, ValidationError

from gateway.directory import Directory
from gateway.domain.identifiers import InvalidIdentifier, parse_orgnr
from gateway.domain.model import HerId
from mappings.fhir import systems as sy
from mappings.plo.msghead import Party

#: a sending organisation as a message names it: (HER-id, organisasjonsnummer), unchecked
Named = tuple[str | None, str | None]


def fhir_sender(bundle: dict[str, Any]) -> list[Named]:
    """MessageHeader.sender and the organisation it is ``partOf``, as the Bundle names them.

    Read from the raw Bundle (the FHIR models run later, in the pipeline): anything that does
    not resolve gives no names, and the caller is then refused as unverifiable.
    """
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        return []
    by_ref: dict[str, dict[str, Any]] = {}
    for entry in entries:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            continue
        if isinstance(entry.get("fullUrl"), str):
            by_ref[entry["fullUrl"]] = res
        if isinstance(res.get("id"), str) and isinstance(res.get("resourceType"), str):
            by_ref[f"{res['resourceType']}/{res['id']}"] = res
    header = entries[0].get("resource") if isinstance(entries[0], dict) else None
    named: list[Named] = []
    ref = header.get("sender") if isinstance(header, dict) else None
    # the department, then the trust it is part of (one level: that is how senders nest)
    for _ in range(2):
        reference = ref.get("reference") if isinstance(ref, dict) else None
        target = by_ref.get(reference) if isinstance(reference, str) else None
        if not isinstance(target, dict) or target.get("resourceType") != "Organization":
            break
        named.append(_identifiers(target))
        ref = target.get("partOf")
    return named


def _identifiers(organization: dict[str, Any]) -> Named:
    her_id = orgnr = None
    idents = organization.get("identifier")
    for ident in idents if isinstance(idents, list) else []:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        if ident.get("system") == sy.HER_SYSTEM:
            her_id = ident["value"]
        elif ident.get("system") == sy.ORGNR_SYSTEM:
            orgnr = ident["value"]
    return her_id, orgnr


def msghead_sender(sender: Party) -> list[Named]:
    """A MsgHead Sender: the organisation and its unit."""
    units = [sender.organisation, *([sender.department] if sender.department else [])]
    return [(str(u.her_id) if u.her_id is not None else None, u.orgnr) for u in units]


#: HER-ids and organisasjonsnumre read exactly as the canonical model reads them (which takes
#: "+99100001" or "0099100001" as 99100001): the rule must see the sender the KE will see
_HER_ID: TypeAdapter[int] = TypeAdapter(HerId)
_ORGNR: TypeAdapter[str] = TypeAdapter(Annotated[str, AfterValidator(parse_orgnr)])


def sender_orgnrs(named: Iterable[Named], directory: Directory) -> frozenset[str] | None:
    """Every organisasjonsnummer the sender is known by: as written, and the directory's for
    each HER-id it gives; None when an identifier does not read as the model reads it (the
    sender cannot be placed, so it cannot be verified)."""
    found: set[str] = set()
    for her_id, orgnr in named:
        try:
            if orgnr:
                found.add(_ORGNR.validate_python(orgnr))
            if her_id:
                listed = directory.orgnr_of_her_id(_HER_ID.validate_python(her_id))
                if listed is not None:
                    found.add(listed)
        except (ValidationError, InvalidIdentifier):
            return None
    return frozenset(found)


def sender_her_ids(named: Iterable[Named]) -> frozenset[int] | None:
    """The HER-ids the sender gives, read as the model reads them; None when one does not
    read (the sender cannot be placed)."""
    try:
        return frozenset(_HER_ID.validate_python(h) for h, _ in named if h)
    except (ValidationError, InvalidIdentifier):
        return None


def speaks_for(organisations: frozenset[str], sender: frozenset[str] | None) -> bool:
    """Whether a caller with these organisations may send as a sender known by ``sender``."""
    return bool(sender) and sender is not None and sender <= organisations
