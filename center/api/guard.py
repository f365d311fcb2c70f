"""What every HTTP request passes before a route sees it, and what every answer carries.

- **Body size** (``BodyLimit``): at most ``JSON_BODY_LIMIT`` (JSON and forms), or
  ``UPLOAD_BODY_LIMIT`` on a route that takes a file (known from the route's own signature).
  A declared ``Content-Length`` over the limit is refused before a byte is read, a chunked
  body as soon as it passes the limit: 413 naming the limit. (FastAPI's ``max_body_size``
  does the same but answers a declared oversize with a bare text 413 that bypasses the
  exception handlers and these headers.)
- **No NUL characters** (U+0000) in the path, the query or any text field of the body: 422.
  PostgreSQL text cannot hold one (psycopg raised DataError: a 500 with a traceback on about
  fifteen routes), and no person types one. One app-wide dependency, not a check per field.
- **Domain errors are answered in one place** (``DOMAIN_ERRORS``): a ticket that does not
  exist is a 404, an action its state does not allow a 409, a bad indicator window a 422,
  each with the error's own text as ``detail``.
- **Validation errors never echo input**: FastAPI's default 422 repeats every wrong value and
  the validator's context (a 100 MB login body came back whole); here only where and what.
- **Security headers** on every answer (``SecurityHeaders``): a Content-Security-Policy that
  allows the pages' own scripts only, no framing, ``nosniff``, no Referer.

docs/security.md "Requests and answers" says what holds and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, HTTPException, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders, UploadFile
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from center.api.uploads import UPLOAD_BODY_LIMIT
from center.domain.ticket_states import IllegalTransition
from center.services.auth import HashingBusy
from center.services.indicators import IndicatorError
from center.services.tickets import TicketNotFound

#: Every JSON (and form-encoded) body: the largest real one, a ticket action with its note or
#: a zone set, is a few KiB.
JSON_BODY_LIMIT = 64 * 1024
#: Longest text echoed in an error's ``loc`` or ``msg`` (a key of the body can be anything).
_MAX_ERROR_TEXT = 200
_MAX_ERRORS = 20
_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# --- body size -----------------------------------------------------------------------------

def body_limit(route: Any) -> int:
    """A route's body limit: the upload limit when its handler takes a file, else the JSON
    one."""
    dependant = getattr(route, "dependant", None)
    if dependant is not None and any(isinstance(f.field_info, params.File)
                                     for f in dependant.body_params):
        return UPLOAD_BODY_LIMIT
    return JSON_BODY_LIMIT


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body too large: at most {limit // 1024} KiB here")


class BodyLimit:
    """Counts the body as the route reads it. The route is known by then (the router has put
    it in the scope), so each route gets its own limit; a route that never reads its body
    never pays for one. The 413 is raised inside the route, so it is answered like any other
    error (Open311 in its own format)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared: int | None = int(Headers(scope=scope)["content-length"])
        except (KeyError, ValueError):
            declared = None
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            limit = body_limit(scope.get("route"))
            if declared is not None and declared > limit:
                raise _too_large(limit)  # before reading a byte of it
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
            return message

        await self.app(scope, limited, send)


# --- NUL characters -------------------------------------------------------------------------

def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _nul_error(loc: Iterable[str]) -> dict[str, Any]:
    return {"type": "string_nul", "loc": list(loc),
            "msg": "text may not contain NUL characters (U+0000)"}


async def _body_with_nul(request: Request) -> list[dict[str, Any]]:
    """Errors for the text fields of a JSON or form body that hold a NUL. The parsed body is
    cached by the request, so the route's own parsing costs nothing more."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _JSON_TYPES or content_type.endswith("+json"):
        try:
            body = await request.json()
        except ValueError:
            return []  # not JSON: the route's own validation answers that (or needs no body)
        return [_nul_error(("body",))] if _has_nul(body) else []
    if content_type in _FORM_TYPES:
        form = await request.form()
        return [_nul_error(("body", key[:_MAX_ERROR_TEXT])) for key, value in form.multi_items()
                if "\x00" in key or (not isinstance(value, UploadFile) and "\x00" in value)]
    return []


async def reject_nul(connection: HTTPConnection) -> None:
    """App-wide dependency: 422 for a NUL in the path, the query or a text field of the body
    (files are bytes and may hold anything). Runs before the route's other dependencies, so
    such a request costs no rate-limit hit, login or query."""
    if connection.scope["type"] != "http" or not isinstance(connection, Request):
        return  # the websocket reads its token from its first message, never from the DB
    errors = []
    if "\x00" in connection.scope["path"]:
        errors.append(_nul_error(("path",)))
    errors += [_nul_error(("query", key[:_MAX_ERROR_TEXT]))
               for key, value in connection.query_params.multi_items()
               if "\x00" in key or "\x00" in value]
    if connection.method in ("POST", "PUT", "PATCH"):
        errors += await _body_with_nul(connection)
    if errors:
        raise RequestValidationError(errors)


# --- error answers --------------------------------------------------------------------------

def _short(part: Any) -> Any:
    return part[:_MAX_ERROR_TEXT] if isinstance(part, str) else part


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 with each error's ``type``, ``loc`` and ``msg`` only: never ``input`` (the value
    sent, a 100 MB body included) nor ``ctx``."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": [
        {"type": e.get("type"), "loc": [_short(p) for p in e.get("loc", ())],
         "msg": _short(str(e.get("msg", "")))} for e in exc.errors()[:_MAX_ERRORS]]})


#: Domain errors and the HTTP status each means; the detail is the error's own text. The one
#: place they become HTTP: routes let them propagate (a route's transaction rolls back on the
#: way out, as with any exception).
DOMAIN_ERRORS: dict[type[Exception], int] = {
    TicketNotFound: 404, IllegalTransition: 409, IndicatorError: 422}


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    """A ``DOMAIN_ERRORS`` error as ``{"detail": "<its text>"}`` with its status, the shape
    of FastAPI's own HTTPException answers (pages match these texts: dashboard/static)."""
    status = next(code for kind, code in DOMAIN_ERRORS.items() if isinstance(exc, kind))
    return JSONResponse(status_code=status, content={"detail": str(exc)})


async def hashing_busy(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)},
                        headers={"Retry-After": "1"})


# --- security headers -----------------------------------------------------------------------

def content_security_policy(img_sources: Iterable[str] = ()) -> str:
    """The pages load scripts, styles, pictures and the websocket from the center only.

    No inline or injected script runs (``script-src 'self'``: the XSS defence that matters).
    Inline *styles* stay allowed, as GitHub's policy allows them: Leaflet, ECharts and Swagger
    UI set them, and a style cannot run code. Pictures may also be ``data:``/``blob:`` (a photo
    being picked on the phone) and come from ``img_sources`` (a map tile server). Video may
    play from ``blob:``: hls.js feeds live view through Media Source Extensions."""
    img = " ".join(("'self'", "data:", "blob:", *img_sources))
    return "; ".join((
        "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'",
        f"img-src {img}", "media-src 'self' blob:", "connect-src 'self'",
        "font-src 'self' data:",
        "worker-src 'self' blob:", "manifest-src 'self'", "object-src 'none'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"))


class SecurityHeaders:
    """Adds the security headers to every HTTP answer that does not set its own.

    ``X-Frame-Options: DENY`` with ``frame-ancestors 'none'``: no page can be framed
    (clickjacking the wall's emergency switch or a leader's actions). ``nosniff``: an upload
    served back is never run as a script. ``Referrer-Policy: no-referrer``: a public case link
    ``/t/{token}`` or a signed picture URL never leaves in a Referer header."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = {"Content-Security-Policy": csp, "X-Frame-Options": "DENY",
                        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                        "Cross-Origin-Opener-Policy": "same-origin"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, *, img_sources: Iterable[str] = ()) -> None:
    """The body limits, the error answers and the headers; ``reject_nul`` is given to
    ``FastAPI(dependencies=...)`` itself (center/app.py), before any route is added."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HashingBusy, hashing_busy)
    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, domain_error)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders, csp=content_security_policy(img_sources))

