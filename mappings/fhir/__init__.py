"""Canonical model <-> FHIR R4 (JSON dicts, checked with fhir.resources' R4B models)."""
