"""The project's own published schemas (package data: XSDs and JSON Schemas)."""
