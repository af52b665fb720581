"""Receipts: the gateway's applikasjonskvittering (AppRec) to the sender of a message.

Statuses come from code list 8258 and error codes from 8221, so a receipt means the same to a
hospital whether it reads this JSON or the AppRec XML document (mappings/plo/apprec.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from gateway.domain.model import Model, Organisation

ERROR_CODE_SYSTEM = "2.16.578.1.12.4.1.1.8221"
STATUS_CODE_SYSTEM = "2.16.578.1.12.4.1.1.8258"
#: code list 9051 ``ENH``
ORGNR_TEXT = "Organisasjonsnummer i Enhetsregisteret"

#: Code list 8221, the texts receiving systems show (DN).
ERROR_TEXTS: dict[str, str] = {
    "T01": "Ikke XML / ikke 'well formed' / uleselig",
    "T02": "XML validerer ikke",
    "T10": "Støtter ikke meldingsformatet",
    "T99": "Annen feil på format",
    "S01": "Feil på signatur",
    "S02": "Ugyldig sertifikat",
    "S03": "Tilbaketrukket sertifikat",
    "S99": "Annen feil på signatur eller sertifikat",
    "E10": "Ugyldig meldingsidentifikator",
    "E20": "Lege finnes ikke",
    "E21": "Mottaker finnes ikke",
    "E30": "Pasientens fødselsnummer mangler",
    "E31": "Pasientens fødselsnummer er feil",
    "E32": "Pasientens navn mangler",
    "E35": "Pasienten finnes ikke i mottakersystemet",
    "E36": "Pasientopplysninger er utilstrekkelige",
    "E53": "Pasientens fødselsnummer eller D-nummer finnes ikke registrert i Folkeregisteret",
    "E54": "Pasientens fødselsnummer er ikke registrert i mottakersystemet",
    "X99": "Annen feil",
}


class ReceiptStatus(StrEnum):
    """Code list 8258."""

    OK = "1"
    REJECTED = "2"
    OK_WITH_ERRORS = "3"

    @property
    def text(self) -> str:
        return {"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"}[self.value]


class ReceiptError(Model):
    code: str = Field(pattern=r"^[TSEX][0-9]{2}$")
    #: free text (AppRec's OT): says what to fix, never holds person data
    detail: str | None = None

    @property
    def text(self) -> str:
        return ERROR_TEXTS.get(self.code, ERROR_TEXTS["X99"])


class Receipt(Model):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    generated_at: dt.datetime
    #: who answers: the KE that acknowledged, or the gateway itself when it rejects
    sender: Organisation
    receiver: Organisation | None
    status: ReceiptStatus
    errors: tuple[ReceiptError, ...] = ()
    original_message_type: str
    #: the sender's own id for the message being answered (AppRec OriginalMsgId/Id)
    original_message_id: str | None
    original_issued_at: dt.datetime | None
    #: the gateway's id of the message answered; None on a receipt read from an AppRec until
    #: the pipeline has matched it to a message (an AppRec does not carry the gateway's id)
    gateway_message_id: uuid.UUID | None = None
    #: the unit within the sender/receiver (AppRec ``Inst/Dept``), when the answer names one
    sender_department: Organisation | None = None
    receiver_department: Organisation | None = None

    @model_validator(mode="after")
    def _errors_say_why(self) -> Receipt:
        if self.status is not ReceiptStatus.OK and not self.errors:
            raise ValueError("a receipt with status 2 or 3 needs at least one error (8221)")
        if self.receiver_department is not None and self.receiver is None:
            raise ValueError("a receiver department needs the receiver it belongs to")
        return self

    def to_json(self) -> dict[str, Any]:
        """The AppRec 1.1 structure, element by element, as JSON."""

        def unit(org: Organisation, dept: Organisation | None = None) -> dict[str, Any]:
            # as mappings/plo/apprec.py writes Inst and Dept: the HER-id is the Id when there
            # is one, else the organisasjonsnummer; an organisasjonsnummer beside a HER-id is
            # an AdditionalId
            body: dict[str, Any] = {"name": org.name}
            if org.her_id is not None:
                body |= {"id": str(org.her_id), "typeId": {"V": "HER", "DN": "HER-id"}}
            elif org.orgnr is not None:
                body |= {"id": org.orgnr, "typeId": {"V": "ENH", "DN": ORGNR_TEXT}}
            if dept is not None:
                body["dept"] = unit(dept)
            if org.her_id is not None and org.orgnr is not None:
                body["additionalId"] = [{"id": org.orgnr, "type": {"V": "ENH", "DN": ORGNR_TEXT}}]
            return body

        def party(org: Organisation | None, dept: Organisation | None) -> dict[str, Any] | None:
            return None if org is None else {"hcp": {"inst": unit(org, dept)}}

        return {
            "msgType": {"V": "APPREC", "DN": "Applikasjonskvittering"},
            "miGversion": "v1.1 2012-02-15",
            "genDate": self.generated_at.isoformat(),
            "id": str(self.id),
            "sender": party(self.sender, self.sender_department),
            "receiver": party(self.receiver, self.receiver_department),
            "status": {"V": self.status.value, "DN": self.status.text},
            "error": [
                {"S": ERROR_CODE_SYSTEM, "V": e.code, "DN": e.text}
                | ({"OT": e.detail} if e.detail and e.detail.strip() else {})
                for e in self.errors
            ],
            "originalMsgId": {
                "msgType": {"V": self.original_message_type},
                "issueDate": (
                    self.original_issued_at.isoformat() if self.original_issued_at else None
                ),
                "id": self.original_message_id,
            },
            "gatewayMessageId": str(self.gateway_message_id) if self.gateway_message_id else None,
        }


class Refused(Exception):
    """A message the gateway will not carry on, with the receipt errors that say why.

    Raised by mappings and rules; the pipeline turns it into status REJECTED and a receipt.
    The message text is safe to log: it holds codes and field paths, never values.
    """

    def __init__(self, *errors: ReceiptError) -> None:
        super().__init__("; ".join(f"{e.code}: {e.detail or e.text}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, code: str, detail: str) -> Refused:
        return cls(ReceiptError(code=code, detail=detail))
