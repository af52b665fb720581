"""The message flow: ingest -> validate -> consent -> route -> deliver -> acknowledge -> receipt."""
