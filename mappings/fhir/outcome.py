"""FHIR OperationOutcome -> AppRec error codes (code list 8221).

A recipient that speaks FHIR says what it thinks of a message in OperationOutcome issue codes
(http://hl7.org/fhir/R4/valueset-issue-type.html); the hospital that sent it reads 8221 codes
in its receipt. This is the one translation, so every FHIR adapter answers a sender alike.

The table follows the R4 issue-type hierarchy:

========================================================  ========  ==========================
issue code                                                8221      why
========================================================  ========  ==========================
invalid, structure, required, value, invariant,           T02       the message does not
too-long, code-invalid                                              validate at the recipient
not-supported, extension                                  T10       the recipient does not
                                                                    take (this part of) the
                                                                    format
security, login, unknown, expired, forbidden              S99       the recipient refused the
                                                                    credentials it was shown
                                                                    (the gateway's, not the
                                                                    sender's content)
not-found, deleted                                        E35/E21   E35 when the issue points
                                                                    at the Patient, else E21
                                                                    (the recipient, i.e. the
                                                                    destination, is unknown)
multiple-matches                                          E36       in a notice the only thing
                                                                    a recipient matches is the
                                                                    person: the data sent did
                                                                    not single them out
duplicate                                                 (none)    the recipient already has
                                                                    the message: not an error
transient family: transient, lock-error, no-store,        X99       "not now": the adapter
exception, timeout, incomplete, throttled                           retries (RECIPIENT_BUSY);
                                                                    X99 only if it ends there
anything else (processing, business-rule, conflict,       X99
too-costly, suppressed, informational, unknown codes)
========================================================  ========  ==========================

"Points at the Patient": an ``expression`` that names ``Patient`` as a path segment, or that
starts ``Bundle.entry[i]`` where entry ``i`` of the Bundle sent is the Patient (the adapter
passes the resource types of what it sent). Kept that simple on purpose: a recipient that
says only ``not-found`` with no expression gets E21.

No person data leaves this module: ``diagnostics`` and ``details.text`` are free text a
recipient may fill with the person's name or id, so they are never read. Details name the
issue code (only codes of the value set; anything else is "unknown issue code") and those
expressions that are plain element paths (``Bundle.entry[3].resource.identifier[0]``); an
expression with a function call or a literal (``where(value='...')``) is left out.

Pure: no I/O, takes any JSON without raising.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.domain.receipt import ReceiptError

#: http://hl7.org/fhir/R4/codesystem-issue-type.html, every code
ISSUE_CODES: frozenset[str] = frozenset(
    {
        "invalid",
        "structure",
        "required",
        "value",
        "invariant",
        "security",
        "login",
        "unknown",
        "expired",
        "forbidden",
        "suppressed",
        "processing",
        "not-supported",
        "duplicate",
        "multiple-matches",
        "not-found",
        "deleted",
        "too-long",
        "code-invalid",
        "extension",
        "too-costly",
        "business-rule",
        "conflict",
        "transient",
        "lock-error",
        "no-store",
        "exception",
        "timeout",
        "incomplete",
        "throttled",
        "informational",
    }
)

#: "the recipient may take the same content once an underlying issue is resolved" (R4)
TRANSIENT: frozenset[str] = frozenset(
    {"transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled"}
)
#: the recipient already has the message
DUPLICATE = "duplicate"

_FIXED: dict[str, str] = {
    **dict.fromkeys(
        ("invalid", "structure", "required", "value", "invariant", "too-long", "code-invalid"),
        "T02",
    ),
    **dict.fromkeys(("not-supported", "extension"), "T10"),
    **dict.fromkeys(("security", "login", "unknown", "expired", "forbidden"), "S99"),
    "multiple-matches": "E36",
}
_NOT_FOUND = frozenset({"not-found", "deleted"})
#: issue severities that do not make an issue an error (fatal and error do)
_NOT_ERRORS = frozenset({"warning", "information"})
#: a plain element path: names and small indexes, nothing that could be a value
_PLAIN_PATH = re.compile(r"[A-Za-z]+(\[[0-9]{1,3}\])?(\.[A-Za-z]+(\[[0-9]{1,3}\])?)*")
_ENTRY = re.compile(r"Bundle\.entry\[([0-9]{1,4})\]")
_PATIENT = re.compile(r"(?<![A-Za-z])Patient(?![A-Za-z])")
_MAX_PATH = 120
#: how many paths one detail names; enough to find the fault, short enough for an AppRec OT
_MAX_PATHS = 3


def error_code(
    issue_code: object, expressions: Sequence[object] = (), entry_types: Sequence[str] = ()
) -> str | None:
    """The 8221 code for one issue; None for ``duplicate`` (already received, not an error).

    Total: any value (a code outside the value set, a number, None) gives a code.
    """
    if issue_code == DUPLICATE:
        return None
    if isinstance(issue_code, str):
        if issue_code in _NOT_FOUND:
            return "E35" if about_patient(expressions, entry_types) else "E21"
        if issue_code in _FIXED:
            return _FIXED[issue_code]
    return "X99"


def about_patient(expressions: Sequence[object], entry_types: Sequence[str] = ()) -> bool:
    """Does an issue point at the Patient (by name, or by its entry in the Bundle sent)?"""
    for expression in expressions:
        if not isinstance(expression, str):
            continue
        if _PATIENT.search(expression):
            return True
        entry = _ENTRY.match(expression)
        if entry:
            index = int(entry[1])
            if index < len(entry_types) and entry_types[index] == "Patient":
                return True
    return False


def plain_paths(expressions: object) -> list[str]:
    """The expressions that are plain element paths: safe to show, as they hold no values."""
    if not isinstance(expressions, list):
        return []
    return [
        e
        for e in expressions
        if isinstance(e, str) and len(e) <= _MAX_PATH and _PLAIN_PATH.fullmatch(e)
    ]


@dataclass(frozen=True)
class Outcome:
    """What an OperationOutcome says, in the terms the gateway acts on."""

    #: every error issue but duplicates, as 8221 codes (transient ones as X99), in order
    errors: tuple[ReceiptError, ...] = ()
    #: some error issue is of the transient family: another try may succeed
    transient: bool = False
    #: some error issue says the recipient already has the message
    duplicate: bool = False
    #: the error issues as codes and plain paths, for a detail or a log line
    summary: str = ""

    @property
    def only_duplicate(self) -> bool:
        """The recipient's only complaint is that it has the message already."""
        return self.duplicate and not self.errors


def read_outcome(outcome: Any, entry_types: Sequence[str] = ()) -> Outcome:
    """Read an OperationOutcome (any JSON: not one gives an empty :class:`Outcome`).

    ``entry_types``: the resource type of each entry of the Bundle sent, so an expression
    ``Bundle.entry[i]`` can be told to be about the Patient.
    """
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return Outcome()
    issues = outcome.get("issue")
    errors: list[ReceiptError] = []
    parts: list[str] = []
    transient = duplicate = False
    for issue in issues if isinstance(issues, list) else ():
        if not isinstance(issue, dict):
            continue
        severity = _text(issue.get("severity"))
        # only what R4 calls no error is skipped: an issue without a readable severity still
        # came with the refusal, and dropping it could turn a refusal into an OK
        if severity in _NOT_ERRORS:
            continue
        code = _text(issue.get("code"))
        name = code if code in ISSUE_CODES else "unknown issue code"
        raw = issue.get("expression")
        expressions = raw if isinstance(raw, list) else []
        paths = plain_paths(expressions)
        text = f"FHIR issue '{name}'" + (f" at {', '.join(paths[:_MAX_PATHS])}" if paths else "")
        if len(paths) > _MAX_PATHS:
            text += f" (+{len(paths) - _MAX_PATHS} more)"
        parts.append(text.removeprefix("FHIR issue "))
        mapped = error_code(code, expressions, entry_types)
        if mapped is None:
            duplicate = True
            continue
        transient = transient or code in TRANSIENT
        errors.append(ReceiptError(code=mapped, detail=text))
    return Outcome(tuple(errors), transient, duplicate, "; ".join(parts))


def _text(value: object) -> str | None:
    """A JSON string as it is; anything else (a list, a number) as no value at all."""
    return value if isinstance(value, str) else None
