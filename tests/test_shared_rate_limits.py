"""Rate limits shared by center replicas (issue 16, docs/security.md "Rate limits",
docs/scaling.md): two ``gridwatch center run`` processes on one PostgreSQL count login
attempts and residents' forms against one budget per key, so a round-robin balancer in front
of N replicas no longer gives a client N times the limit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators.local_services import Mosquitto
from tests import plain_http
from tests.test_replicas import _Replica, district, started_replicas

__all__ = ["district"]


@pytest.fixture
def two_replicas(db_dsn: str, mqtt_broker: Mosquitto, district: Path,
                 tmp_path: Path) -> Iterator[list[_Replica]]:
    with started_replicas(2, "limits", db_dsn, mqtt_broker.port, district, tmp_path,
                          env={"GRIDWATCH_AUTH__PUBLIC_RATE_IP": "3/minute"}) as pair:
        yield pair


def test_login_and_public_limits_hold_across_two_replicas(two_replicas: list[_Replica]) -> None:
    a, b = two_replicas
    person = f"nobody-{uuid.uuid4().hex[:6]}"  # unknown: 401, and the attempt still counts

    def login(replica: _Replica) -> httpx.Response:
        return plain_http.post(replica.url + "/api/v1/auth/login",
                               json={"person_id": person, "password": "guess"}, timeout=10)

    # 5 attempts a minute per person and address (the default): 3 on A and 2 on B use it up
    assert [login(a).status_code for _ in range(3)] == [401] * 3
    assert [login(b).status_code for _ in range(2)] == [401] * 2
    refused = login(b)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "login attempts for" in refused.json()["detail"]
    assert login(a).status_code == 429  # and on the first replica as well

    def report(replica: _Replica) -> int:
        """A resident's form (whether the place is in the district does not matter: the
        limit is counted first)."""
        form = {"event_type": "0506", "lon": "120.1520", "lat": "30.2715", "description": "x"}
        return plain_http.post(replica.url + "/api/v1/public/requests", data=form,
                               timeout=10).status_code

    codes = [report(a), report(b), report(a), report(b)]  # 3 a minute (set above)
    assert codes[3] == 429 and 429 not in codes[:3], codes
