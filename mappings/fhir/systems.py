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
EXISTING_COORDINATOR_EXTENSION = f"{OWN}/StructureDefinition/existing-coordinator"
#: on a notice's CarePlan: the health trust takes part, its own KE is told too (valueBoolean)
HEALTH_TRUST_TAKES_PART_EXTENSION = f"{OWN}/StructureDefinition/health-trust-takes-part"
#: on a Consent given by next of kin: why the person lacks capacity to consent
LACKS_CAPACITY_EXTENSION = f"{OWN}/StructureDefinition/lacks-capacity-reason"
#: on a Consent: a kommune it names (valueCoding, kommunenummer), e.g. the one moved to
CONSENT_KOMMUNE_EXTENSION = f"{OWN}/StructureDefinition/consent-kommune"

# --- individual plan (mappings/fhir/plan.py; mappings/README.md has the § 19 table)
#: code list 9034, health personnel's role to the patient: ``8`` Koordinator individuell plan
ROLE_9034_SYSTEM = f"{OID}.1.9034"
ROLE_9034_COORDINATOR = "8"
#: the plan's own id, the same on every platform the plan moves to
PLAN_ID_SYSTEM = f"{OWN}/NamingSystem/plan-id"
#: keys local to one plan (participants, goals): what cross-references inside the plan use
PLAN_KEY_SYSTEM = f"{OWN}/NamingSystem/plan-key"
#: who a CareTeam participant is in the plan: the ParticipantKind codes + cooperating-agency
PLAN_PARTICIPANT_SYSTEM = f"{OWN}/CodeSystem/plan-participant"
#: koordinator / barnekoordinator (hol. § 7-2 a), beside 9034 code 8
COORDINATOR_KIND_SYSTEM = f"{OWN}/CodeSystem/coordinator-kind"
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

_SD = f"{OWN}/StructureDefinition"
#: MessageHeader (a transfer), Communication (a status): the kommune the person moved to
#: (valueCoding, kommunenummer)
NEW_KOMMUNE_EXTENSION = f"{_SD}/new-kommune"
#: Communication (a status): the KE that keeps the plan now (valueReference to Organization)
NEW_RESPONSIBLE_EXTENSION = f"{_SD}/new-responsible"
#: plan status messages (mappings/fhir/plan_status.py): what became of the plan
PLAN_EVENT_SYSTEM = f"{OWN}/CodeSystem/plan-event"
#: the gateway's own message ids, which a status message refers to
GATEWAY_MESSAGE_SYSTEM = f"{OWN}/NamingSystem/gateway-message-id"
#: CarePlan: the plan's version number (valuePositiveInt), version id and previous (valueId)
PLAN_VERSION_EXTENSION = f"{_SD}/plan-version"
PLAN_VERSION_ID_EXTENSION = f"{_SD}/plan-version-id"
PLAN_PREVIOUS_VERSION_ID_EXTENSION = f"{_SD}/plan-previous-version-id"
#: CarePlan: why a completed plan was closed (valueString)
PLAN_CLOSED_REASON_EXTENSION = f"{_SD}/plan-closed-reason"
#: CarePlan, repeating: § 19 a needs and resources (valueString), § 19 g evaluations (valueDate)
PLAN_NEED_EXTENSION = f"{_SD}/plan-need"
PLAN_RESOURCE_EXTENSION = f"{_SD}/plan-resource"
PLAN_EVALUATION_EXTENSION = f"{_SD}/plan-evaluation"
#: CareTeam.participant: § 19 d contribution (valueString); the organisation of a participant
#: who is not a Practitioner (valueReference; onBehalfOf is for Practitioners only, ctm-1)
PARTICIPANT_CONTRIBUTION_EXTENSION = f"{_SD}/participant-contribution"
PARTICIPANT_ORGANIZATION_EXTENSION = f"{_SD}/participant-organization"
#: CareTeam.participant of a cooperating agency: § 19 i what the cooperation is about
COOPERATION_DESCRIPTION_EXTENSION = f"{_SD}/cooperation-description"
#: CarePlan.activity.detail: the measure's key (valueId), § 19 f how it is carried out
#: (valueString), its period (valuePeriod: scheduled[x] already holds the scope as a string)
MEASURE_KEY_EXTENSION = f"{_SD}/measure-key"
MEASURE_HOW_EXTENSION = f"{_SD}/measure-how"
MEASURE_PERIOD_EXTENSION = f"{_SD}/measure-period"

ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
#: RelatedPerson.relationship codes we read as "those with parental responsibility"
PARENT_ROLE_CODES = frozenset({"PRN", "MTH", "FTH", "GUARD", "PRNFOST", "STPPRN"})
