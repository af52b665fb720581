"""Canonical model <-> KITH XML: MsgHead v1.2, Dialogmelding 1.1, AppRec, our IP content."""
