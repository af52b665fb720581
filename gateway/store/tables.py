"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` must match these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from gateway.store.sealed import Sealed, SealedText


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on the way in and out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    #: bumped when an operator re-drives a message, so dedupe lets the new attempt through
    Column("generation", Integer, nullable=False, default=0),
    Column("sender_endpoint", String(256)),
    Column("sender_message_id", String(64)),
    Column("recipient_kommune", String(4)),
    Column("recipient_her_id", Integer),
    Column("recipient_adapter", String(64)),
    #: keyed HMAC of the person id: lookups by person without storing the id in clear
    Column("patient_pseudonym", String(64)),
    Column("content_type", String(64), nullable=False),
    #: the body exactly as received, kept for the operator and for replay (sealed: person data)
    Column("raw", Sealed("messages.raw"), nullable=False),
    #: the canonical model as JSON, once validated (sealed: person data)
    Column("canonical", SealedText("messages.canonical")),
    #: why the message is held, rejected or dead. Sealed: a recipient's rejection (the KE
    #: inbox's ack, an AppRec's original text) is quoted here and is free text
    Column("reason", SealedText("messages.reason", note=True)),
    Column("received_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    #: delivery tries made in this generation (each try and each resend is one); a stage
    #: command names the try it is for, so a stale command cannot deliver twice
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    #: failed tries in a row: which retry tier comes next (gateway/delivery_policy.py)
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    #: resends because no acknowledgement came in time
    Column("resends", Integer, nullable=False, default=0, server_default="0"),
    #: when a RETRYING message is due for its next try
    Column("next_attempt_at", UtcDateTime),
    #: the sending organisation's HER-id, once validated: a kommune's KE sees the plans it
    #: sent on (its outgoing transfers)
    Column("sender_her_id", Integer),
    #: for a plan message handed to one party of the plan (a health trust): the message it
    #: came from, which answers the sender once every party has answered
    Column("parent_id", String(36)),
    UniqueConstraint("sender_endpoint", "sender_message_id", name="uq_messages_sender_ref"),
    Index("ix_messages_status_updated", "status", "updated_at"),
    Index("ix_messages_recipient", "recipient_kommune", "status"),
    Index("ix_messages_patient", "patient_pseudonym"),
    Index("ix_messages_kind_sender", "kind", "sender_her_id"),
    Index("ix_messages_parent", "parent_id"),
    Index("ix_messages_sender_ref", "sender_message_id"),
    Index(
        "ix_messages_status_recipient",
        "status",
        "recipient_kommune",
        "recipient_her_id",
        "updated_at",
        "kind",
    ),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("status", String(16)),
    #: sealed like messages.reason, which it repeats
    Column("detail", SealedText("message_events.detail", note=True)),
    Column("actor", String(128), nullable=False),
    Index("ix_message_events_message", "message_id", "id"),
    Index("ix_message_events_at", "at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("adapter", String(64), nullable=False),
    #: delivered; failed (retryable: a retry tier or DEAD follows); refused (final)
    Column("outcome", String(16), nullable=False),
    Column("cause", String(32)),
    Column("code", String(3)),
    #: what the adapter reported; never holds person data
    Column("detail", Text),
    #: the platform's own id for what it received (e.g. the NHN message id)
    Column("remote_ref", String(128)),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_delivery_attempts_message", "message_id", "id"),
    Index("ix_delivery_attempts_at", "at"),
)

plan_versions = Table(
    "plan_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: the plan's own id (the same on every platform) and the version a message carried;
    #: the content itself is the message's canonical form
    Column("plan_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("version_id", String(64), nullable=False),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_plan_versions_plan", "plan_id", "version"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(128), nullable=False),
    Column("key", LargeBinary),
    #: the record for the broker. Sealed: a receipt's record carries the recipient's error
    #: texts, free text that may name the person (deleted once published, but written first)
    Column("value", Sealed("outbox.value"), nullable=False),
    Column("headers", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

handled = Table(
    "handled",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("ref", String(80), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("message_id", String(36), ForeignKey("messages.id"), primary_key=True),
    Column("kommune_nr", String(4), nullable=False),
    Column("delivered_at", UtcDateTime, nullable=False),
    Column("acked_at", UtcDateTime),
    Index("ix_inbox_kommune_open", "kommune_nr", "acked_at", "delivered_at"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("message_id", String(36), ForeignKey("messages.id"), primary_key=True),
    Column("status", String(1), nullable=False),
    #: the receipt as JSON (sealed: an error's detail may quote what the sender sent)
    Column("body", SealedText("receipts.body"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: the consent's own id, unique per person (senders number their consents themselves)
    Column("consent_id", String(64), nullable=False),
    #: keyed HMAC of the person id: the raw id is never stored with a consent
    Column("patient_pseudonym", String(64), nullable=False),
    #: the ConsentRecord as JSON (purposes, who, when, validity, withdrawal; no person id;
    #: sealed: who gave it and why is still about the person)
    Column("record", SealedText("consents.record"), nullable=False),
    #: the message or API call that brought it, for the operator
    Column("source", String(64), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("patient_pseudonym", "consent_id", name="uq_consents_person_consent"),
    Index("ix_consents_patient", "patient_pseudonym", "recorded_at"),
)

#: every look at person data (content, a search by person) and every operator action: who,
#: what, when, why (issue 8 chains the entries by hash)
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    #: a message id, or a pseudonym's first characters for a search by person; never a person id
    Column("target", String(64)),
    Column("reason", Text),
    #: the chain (gateway/store/audit_chain.py): the hash of the entry before, and this one's
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
    Index("ix_audit_log_at", "at"),
)
