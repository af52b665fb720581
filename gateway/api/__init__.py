"""HTTP API (FastAPI): FHIR ingest, KE inbox, receipts, health and operator reads."""
