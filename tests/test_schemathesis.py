"""schemathesis against the real center's OpenAPI spec (``/openapi.json``): generated valid and
invalid requests for every operation, bounded so the test stays near a minute; no 5xx."""

from __future__ import annotations

from typing import Any

from simulators.reliability import fuzz_api


def test_no_server_errors(center: Any) -> None:
    counts, failures = fuzz_api(center.url, max_examples=15)
    assert counts["operations"] > 10 and counts["requests"] > counts["operations"]
    assert not failures and counts["5xx"] == 0, "\n".join(failures)
