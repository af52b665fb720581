"""Fitting text into a platform's field limit: the one word-boundary cut the vendor profiles
share (each adds its own marker and records what it cut)."""

from __future__ import annotations


def cut_at_word(text: str, budget: int) -> str:
    """At most ``budget`` characters, ending at a word boundary when there is one. A text
    with no whitespace in reach (one very long word) is cut inside it: staying within the
    limit matters more than a clean break. The model's text holds no whitespace but space,
    tab, CR and LF, so those are the boundaries."""
    if len(text) <= budget:
        return text
    head = text[:budget]
    if not text[budget].isspace():
        boundary = max(head.rfind(c) for c in " \t\r\n")
        if boundary > 0:
            head = head[:boundary]
    return head.rstrip()
