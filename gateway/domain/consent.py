"""Consent (samtykke) as the gateway records it: who consented, to what, for how long.

The law behind it: no individual plan without the person's consent, no transfer without it,
participants see confidential information only with it (forskrift § 19 h, pasient- og
brukerrettighetsloven kap. 4). When the person lacks the capacity to consent
(samtykkekompetanse), next of kin consent on their behalf, and the reason must be on record;
for a child, those with parental responsibility consent.

A record holds no person id: the registry files it under the person's keyed pseudonym.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from gateway.domain.model import ConsentGiver, KommuneNr, MessageRef, Model, NonBlank


class ConsentPurpose(StrEnum):
    """What the consent allows (the codes travel in FHIR ``provision.purpose`` and in XML)."""

    #: the hospital tells the kommune's KE that the person needs a plan or coordinator
    NEED_NOTICE = "need-notice"
    #: the kommune makes an individual plan
    PLAN = "plan"
    #: the plan moves to the kommune the person moved to
    TRANSFER = "transfer"
    #: the health trust takes part and gets the plan's updates
    SHARE_WITH_HF = "share-hf"
    #: named participants may see confidential information
    SHARE_CONFIDENTIAL = "share-confidential"


class ConsentRecord(Model):
    """One statement of consent (or of refusal) by or for one person."""

    #: the consent's own id (FHIR Consent.id or identifier, our id for XML and API)
    id: MessageRef
    purposes: Annotated[tuple[ConsentPurpose, ...], Field(min_length=1)]
    given_by: ConsentGiver
    #: why the person cannot consent themselves; the rules hold next of kin's consent without
    lacks_capacity_reason: NonBlank | None = None
    given_on: dt.date
    #: the period the consent holds for (from ``given_on`` when unset; open-ended when unset)
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    #: the person said no: messages for these purposes are stopped, not held
    refused: bool = False
    #: when the consent was withdrawn (it holds no more from then on)
    withdrawn_at: dt.datetime | None = None
    #: the kommuner the consent names, when it names any (e.g. the kommune moved to)
    kommuner: tuple[KommuneNr, ...] = ()
    #: for ``share-confidential``: who may see it (participant keys or HPR-numre as text)
    participants: tuple[NonBlank, ...] = ()
    #: when the gateway learnt of it: the latest statement about a purpose wins
    recorded_at: dt.datetime

    @model_validator(mode="after")
    def _coherent(self) -> ConsentRecord:
        # next of kin without a reason is kept (nothing is dropped) and held by the rules
        start = self.valid_from or self.given_on
        if self.valid_until is not None and self.valid_until < start:
            raise ValueError("a consent cannot end before it starts")
        return self

    @property
    def starts(self) -> dt.date:
        return self.valid_from or self.given_on
