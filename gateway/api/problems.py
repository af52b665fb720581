"""Error answers: RFC 9457 problem JSON, and FHIR OperationOutcome on the FHIR endpoints."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.domain.receipt import ReceiptError
from gateway.sealing import SealBroken

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://ipgw.example/problems/"
FHIR_JSON = "application/fhir+json"

#: AppRec error code -> FHIR issue type (http://hl7.org/fhir/issue-type)
_ISSUE_TYPE = {"T01": "structure", "T02": "structure", "T10": "not-supported", "E10": "value"}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": PROBLEM_BASE + self.slug, "title": self.title}
        out["status"] = self.status
        if self.detail:
            out["detail"] = self.detail
        if instance:
            out["instance"] = instance
        return out | self.extra


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    if request.url.path.startswith("/fhir"):
        # the problem's code leads, so a FHIR client can tell an expired token from a spoof
        return operation_outcome(
            problem.status,
            [
                (
                    "error",
                    _http_issue(problem.status),
                    f"{problem.slug}: {problem.detail or problem.title}",
                )
            ],
            headers=problem.headers,
        )
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        media_type="application/problem+json",
        headers=problem.headers,
    )


def _http_issue(status: int) -> str:
    return {
        401: "login",
        403: "forbidden",
        404: "not-found",
        413: "too-costly",
        415: "not-supported",
        429: "throttled",
    }.get(status, "invalid")


def operation_outcome(
    status: int,
    issues: list[tuple[str, str, str]],
    *,
    resource_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``issues``: (severity, FHIR issue type, diagnostics)."""
    body: dict[str, Any] = {"resourceType": "OperationOutcome"}
    if resource_id:
        body["id"] = resource_id
    body["issue"] = [
        {"severity": sev, "code": code, "diagnostics": diag} for sev, code, diag in issues
    ]
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def receipt_issues(errors: tuple[ReceiptError, ...]) -> list[tuple[str, str, str]]:
    return [
        (
            "error",
            _ISSUE_TYPE.get(e.code, "invalid"),
            f"{e.code} {e.text}: {e.detail or ''}".rstrip(": "),
        )
        for e in errors
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(Problem(exc.status_code, slug, str(exc.detail)), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return problem_response(Problem(422, "invalid-request", "Invalid request", where), request)

    @app.exception_handler(SealBroken)
    async def _sealed(request: Request, exc: SealBroken) -> JSONResponse:
        # a stored value that does not open (altered, or under a key no longer configured):
        # refuse loudly rather than answer without it; the text names a key id, never data
        log.error("a stored value does not open on %s: %s", request.url.path, exc)
        return problem_response(
            Problem(500, "stored-data-unreadable", "A stored value does not open", str(exc)),
            request,
        )
