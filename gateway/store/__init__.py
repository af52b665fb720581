"""The system of record: messages, their timeline, outbox, dedupe, inboxes and receipts."""
