"""schemathesis against the real center's OpenAPI spec (``/openapi.json``): generated valid and
invalid requests for every operation, bounded so the test stays near a minute; no 5xx."""

from __future__ import annotations

from typing import Any

from bench.drills import api_fuzz


def test_no_server_errors(center: Any) -> None:
    result = api_fuzz(center.url, max_examples=15)
    assert result["operations"] > 10 and result["requests"] > result["operations"]
    assert result["ok"], "\n".join(result["failures"])
