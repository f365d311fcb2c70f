"""Open311 GeoReport v2 against the running center: field by field against the spec's fields
(services, service definition, requests list and detail, POST), status mapping and the
Open311 error format ([{"code", "description"}] with a matching HTTP status)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests import plain_http
from tests.mqtt_helpers import tiny_jpeg

BASE = "/open311/v2"
MG011 = {"lat": "30.2715", "long": "120.152"}
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords",
                  "group"}
REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name",
                  "service_code", "description", "agency_responsible", "service_notice",
                  "requested_datetime", "updated_datetime", "expected_datetime", "address",
                  "address_id", "zipcode", "lat", "long", "media_url"}


def _w3(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no time zone"
    return value


def _is_error(r: httpx.Response, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, list) and body, body
    assert set(body[0]) == {"code", "description"}
    assert body[0]["code"] == status
    assert fragment in body[0]["description"], body


def _post(center: Any, **form: str) -> httpx.Response:
    return plain_http.post(center.url + BASE + "/requests.json", data=form, timeout=10)


def _act(center: Any, ticket_id: str, action: str, actor: str) -> None:
    r = center.client(actor).post(f"/api/v1/tickets/{ticket_id}/actions",
                                  json={"action": action}, timeout=10)
    assert r.status_code == 200, r.text


def test_services_and_definitions(center) -> None:
    r = plain_http.get(center.url + BASE + "/services.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    services = {s["service_code"]: s for s in r.json()}
    assert "0506" in services and "0504" in services
    for s in services.values():
        assert set(s) == SERVICE_FIELDS
        assert s["metadata"] is False and s["type"] == "realtime"
    bikes = services["0506"]
    assert bikes["service_name"] == "非机动车乱停放"
    assert bikes["description"] == "Non-motor vehicle parked illegally"
    assert bikes["keywords"] == "非机动车乱停放, Non-motor vehicle parked illegally, 0506"
    assert bikes["group"] == "街面秩序 Street order"

    r = plain_http.get(center.url + BASE + "/services/0506.json")
    assert r.status_code == 200 and r.json() == {"service_code": "0506", "attributes": []}
    _is_error(plain_http.get(center.url + BASE + "/services/9999.json"), 404, "9999")
    _is_error(plain_http.get(center.url + BASE + "/services.json?jurisdiction_id=elsewhere.gov"),
              404, "jurisdiction_id")
    services = plain_http.get(center.url + BASE + "/services.json?jurisdiction_id=demo")
    assert services.status_code == 200


def test_post_creates_a_routed_ticket_and_reads_back_field_by_field(center) -> None:
    before = datetime.now().astimezone()
    r = _post(center, service_code="0506", description="三辆电动车堵住盲道", first_name="Li",
              last_name="Ming", email="li@example.org", account_id="acct-7", **MG011)
    assert r.status_code == 201, r.text
    [created] = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert created["account_id"] == "acct-7"
    assert "mg-011" in created["service_notice"]
    rid = created["service_request_id"]

    ticket = center.client("op-01").get(f"/api/v1/tickets/{rid}").json()
    assert ticket["source"] == "open311" and ticket["state"] == "dispatched"
    assert ticket["micro_grid_id"] == "mg-011" and ticket["assignee_id"] == "w-0111"
    assert ticket["grid_id"] == "g-01"

    r = plain_http.get(f"{center.url}{BASE}/requests/{rid}.json")
    assert r.status_code == 200
    [req] = r.json()
    assert set(req) == REQUEST_FIELDS
    assert req["service_request_id"] == rid
    assert req["status"] == "open"
    assert "Dispatched" in req["status_notes"]
    assert (req["service_code"], req["service_name"]) == ("0506", "非机动车乱停放")
    assert req["description"] == "三辆电动车堵住盲道"
    assert req["agency_responsible"] == "城管中队 Urban management squad"
    requested = _w3(req["requested_datetime"])
    assert requested.utcoffset() == timedelta(hours=8)  # the district's time zone
    assert before - timedelta(seconds=5) <= requested <= datetime.now().astimezone()
    assert _w3(req["updated_datetime"]) >= requested
    # 0506 must be closed within 120 minutes, round the clock.
    assert _w3(req["expected_datetime"]) - requested == timedelta(minutes=120)
    assert req["address"] == ("东街社区第1微网格 Micro-grid 1.1, 东街社区 East Street Community, "
                              "示范街道 Demo sub-district")
    assert req["address_id"] == "mg-011"
    assert (req["lat"], req["long"]) == (30.2715, 120.152)
    assert req["media_url"] is None

    # A worker's photo stays with the staff: it is no media_url, and the staff URL needs a login.
    up = center.client("w-0111").post(f"/api/v1/tickets/{rid}/attachments",
                    files={"photo": ("p.jpg", tiny_jpeg(), "image/jpeg")})
    assert up.status_code == 201, up.text
    [req] = plain_http.get(f"{center.url}{BASE}/requests/{rid}.json").json()
    assert req["media_url"] is None
    assert plain_http.get(center.url + up.json()["url"]).status_code == 401
    assert plain_http.get(f"{center.url}{BASE}/requests/{rid}/photo").status_code == 404


def test_status_mapping_and_request_filters(center) -> None:
    ids = [_post(center, service_code=code, description=f"case {i}", **MG011).json()[0]
           ["service_request_id"] for i, code in enumerate(("0506", "0504", "0506", "0506"))]
    solved, voided, handled, _ = ids
    # solved: verified by the micro-grid leader -> closed (the problem is confirmed gone)
    for action, actor in (("accept", "w-0111"), ("resolve", "w-0111"), ("verify", "l-011")):
        _act(center, solved, action, actor)
    _act(center, voided, "void", "op-01")               # voided -> closed
    for action in ("accept", "resolve"):                 # handled, not yet verified -> open
        _act(center, handled, action, "w-0111")

    url = center.url + BASE + "/requests.json"
    everything = plain_http.get(url).json()
    assert [r["service_request_id"] for r in everything] == ids[::-1]  # newest first
    status = {r["service_request_id"]: r["status"] for r in everything}
    assert status == {ids[0]: "closed", ids[1]: "closed", ids[2]: "open", ids[3]: "open"}
    by_id = {r["service_request_id"]: r for r in everything}
    assert "Verified" in by_id[solved]["status_notes"]
    assert "Voided" in by_id[voided]["status_notes"]
    ticket = center.client("op-01").get(f"/api/v1/tickets/{solved}").json()
    # For a closed request, updated_datetime is when it closed (w3, whole seconds).
    assert _w3(by_id[solved]["updated_datetime"]) == \
        _w3(ticket["verified_at"]).replace(microsecond=0)
    for r in everything:
        assert set(r) == REQUEST_FIELDS

    def ids_for(**params: str) -> list[str]:
        resp = plain_http.get(url, params=params)
        assert resp.status_code == 200, resp.text
        return [r["service_request_id"] for r in resp.json()]

    assert ids_for(status="closed") == [voided, solved]
    assert ids_for(status="open") == [ids[3], handled]
    assert ids_for(status="open,closed") == ids[::-1]
    assert ids_for(service_code="0504") == [voided]
    assert ids_for(service_code="0504,0506", status="open") == [ids[3], handled]
    # service_request_id overrides every other argument.
    assert ids_for(service_request_id=f"{solved},{handled}", status="open") == [handled, solved]
    future = (datetime.now().astimezone() + timedelta(days=1)).isoformat()
    assert ids_for(start_date=future) == []
    past = (datetime.now().astimezone() - timedelta(days=1)).isoformat()
    assert ids_for(start_date=past) == ids[::-1]

    _is_error(plain_http.get(url, params={"start_date": "2026-01-01T00:00:00Z",
                                     "end_date": "2026-06-01T00:00:00Z"}), 400, "90 days")
    _is_error(plain_http.get(url, params={"start_date": "last week"}), 400, "w3")
    _is_error(plain_http.get(url, params={"status": "pending"}), 400, "status")
    _is_error(plain_http.get(url, params={"service_request_id": "abc"}), 400, "service_request_id")
    _is_error(plain_http.get(f"{center.url}{BASE}/requests/999999.json"), 404, "999999")


def test_bad_posts_answer_in_open311_error_format(center) -> None:
    _is_error(_post(center, **MG011), 400, "service_code was not provided")
    _is_error(_post(center, service_code="9999", **MG011), 404, "service_code '9999' not found")
    _is_error(_post(center, service_code="0506", address_string="人民路 12 号"), 400,
              "lat and long are required")
    _is_error(_post(center, service_code="0506", lat="north", long="120.15"), 400,
              "lat must be a number")
    _is_error(_post(center, service_code="0506", lat="95", long="120.15"), 400, "out of range")
    _is_error(_post(center, service_code="0506", lat="30.20", long="120.10"), 400,
              "outside every grid")
    _is_error(_post(center, service_code="0506", description="x" * 4001, **MG011), 400,
              "4000")
    _is_error(_post(center, service_code="0506", jurisdiction_id="elsewhere.gov", **MG011),
              404, "jurisdiction_id")
    # Nothing was created by any of those.
    assert plain_http.get(center.url + BASE + "/requests.json").json() == []


def test_listings_hold_no_public_tokens_and_only_residents_own_photos(center) -> None:
    """A case's public token rates (and thereby closes) it: only the resident who filed it has
    it. The listings used to carry every case's token inside ``media_url``."""
    photo = b"\x89PNG\r\n\x1a\n" + b"resident's own photo"
    r = plain_http.post(center.url + "/api/v1/public/requests",
                        data={"event_type": "0506", "lon": "120.152", "lat": "30.2715",
                         "description": "bikes on the pavement"},
                        files={"photo": ("p.png", photo, "image/png")})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    open311_case = _post(center, service_code="0504", **MG011).json()[0]["service_request_id"]
    listing = plain_http.get(center.url + BASE + "/requests.json")
    assert listing.status_code == 200 and token not in listing.text
    by_id = {x["service_request_id"]: x for x in listing.json()}
    [resident] = [x for x in by_id.values() if x["description"] == "bikes on the pavement"]
    # the resident's own photo, by a URL that names the request, not the case's token
    assert resident["media_url"] == (f"{center.url}{BASE}/requests/"
                                     f"{resident['service_request_id']}/photo")
    got = plain_http.get(resident["media_url"])
    assert got.status_code == 200 and got.content == photo
    assert got.headers["content-type"] == "image/png"
    assert by_id[open311_case]["media_url"] is None
    # the photo URL grants nothing else: rating still needs the resident's own link
    assert plain_http.post(resident["media_url"].replace("/photo", "/rating"),
                           json={"satisfaction": 1}).status_code in (404, 405)
