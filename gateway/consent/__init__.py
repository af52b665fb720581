"""The consent registry: rules (pure) and the store of consents by person pseudonym."""
