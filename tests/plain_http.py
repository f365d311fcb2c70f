"""One-off HTTP requests from tests to the centers they start: httpx's one-call functions
(``httpx.get`` ...) without their TLS set-up.

``httpx.get`` builds a client per call, and each client reads certifi's CA bundle into a new
TLS context: 0.07 s of this box per call, 0.17 s with a center busy beside it, paid even for
plain ``http://`` on loopback, and tests poll with such calls. Here every call shares one
context (used only by an ``https://`` URL) and otherwise behaves like httpx's functions: a
connection of its own, closed after, and httpx's default timeout of 5 s.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

TLS_CONTEXT = ssl.create_default_context()


def request(method: str, url: str, *, timeout: float | httpx.Timeout = 5.0,
            follow_redirects: bool = False, **kw: Any) -> httpx.Response:
    with httpx.Client(verify=TLS_CONTEXT, timeout=timeout,
                      follow_redirects=follow_redirects) as client:
        return client.request(method, url, **kw)


def get(url: str, **kw: Any) -> httpx.Response:
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> httpx.Response:
    return request("POST", url, **kw)


def put(url: str, **kw: Any) -> httpx.Response:
    return request("PUT", url, **kw)


def delete(url: str, **kw: Any) -> httpx.Response:
    return request("DELETE", url, **kw)


def patch(url: str, **kw: Any) -> httpx.Response:
    return request("PATCH", url, **kw)
