"""Canonical model, identifiers, statuses and receipts: pure, no I/O."""
