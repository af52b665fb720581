"""Pure mappings between the canonical model and external formats (no I/O)."""
