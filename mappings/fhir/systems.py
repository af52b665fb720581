"""Identifier and code systems: HL7 Norway no-basis where one exists, the project's own else.

The project's own systems live under ``https://ipgw.example/fhir/`` (a reserved, never
resolvable domain): no national FHIR profile for individuell plan exists yet.
"""

from __future__ import annotations

from gateway.domain.identifiers import PersonIdKind

OID = "urn:oid:2.16.578.1.12.4.1"

PERSON_ID_SYSTEMS: dict[PersonIdKind, str] = {
    PersonIdKind.FNR: f"{OID}.4.1",
    PersonIdKind.DNR: f"{OID}.4.2",
    PersonIdKind.FHN: f"{OID}.4.3",
}
PERSON_ID_KINDS = {system: kind for kind, system in PERSON_ID_SYSTEMS.items()}
HPR_SYSTEM = f"{OID}.4.4"
ORGNR_SYSTEM = f"{OID}.4.101"
HER_SYSTEM = f"{OID}.2"

MUNICIPALITY_EXTENSION = "http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode"
MUNICIPALITY_SYSTEMS = (
    "https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle",
    f"{OID}.1.3402",
)
INTERPRETER_REQUIRED_EXTENSION = (
    "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
)
BCP47 = "urn:ietf:bcp:47"

OWN = "https://ipgw.example/fhir"
MESSAGE_EVENT_SYSTEM = f"{OWN}/CodeSystem/message-event"
CAREPLAN_CATEGORY_SYSTEM = f"{OWN}/CodeSystem/careplan-category"
REQUESTED_SERVICE_SYSTEM = f"{OWN}/CodeSystem/requested-service"
CONSENT_PURPOSE_SYSTEM = f"{OWN}/CodeSystem/consent-purpose"
URGENT_EXTENSION = f"{OWN}/StructureDefinition/urgent"
NEXT_OF_KIN_INVOLVED_EXTENSION = f"{OWN}/StructureDefinition/next-of-kin-involved"

ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
#: RelatedPerson.relationship codes we read as "those with parental responsibility"
PARENT_ROLE_CODES = frozenset({"PRN", "MTH", "FTH", "GUARD", "PRNFOST", "STPPRN"})
