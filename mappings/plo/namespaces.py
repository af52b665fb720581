"""XML namespaces (MeldingsVersjoner.xml lists the official ones) and the code-list OIDs."""

from __future__ import annotations

MSGHEAD = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DIALOG_1_0 = "http://www.kith.no/xmlstds/dialog/2006-10-11"
DIALOG_1_1 = "http://www.kith.no/xmlstds/dialog/2013-01-23"
BASE64 = "http://www.kith.no/xmlstds/base64container"
APPREC_1_0 = "http://www.kith.no/xmlstds/apprec/2004-11-21"
APPREC_1_1 = "http://www.kith.no/xmlstds/apprec/2012-02-15"
KITH = "http://www.kith.no/xmlstds"
FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XHTML = "http://www.w3.org/1999/xhtml"
#: the project's own structured IP content; no national message exists for a need-for-IP
#: notice or a plan transfer, so this namespace is ours (dated, as KITH dates theirs)
IP = "https://ipgw.example/xmlstds/ip-melding/2026-11-23"

MSGHEAD_MIG = "v1.2 2006-05-24"

#: code lists, OID 2.16.578.1.12.4.1.1.<n>
OID = "2.16.578.1.12.4.1.1"
MESSAGE_FUNCTION = f"{OID}.8279"
ORG_ID_TYPE = f"{OID}.9051"
PERSON_ID_TYPE = f"{OID}.8116"
ROLE_TO_PATIENT = f"{OID}.9034"
IP_STATUS = f"{OID}.8307"
NOTAT_TOPIC = f"{OID}.7322"
KOMMUNE_NR = f"{OID}.3402"
DOCUMENT_TYPE = f"{OID}.8114"
ACK = f"{OID}.7304"
RECEIPT_STATUS = f"{OID}.8258"
RECEIPT_ERROR = f"{OID}.8221"
