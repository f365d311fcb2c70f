"""The operations ledger has one writer (center/store/ledger.py): every route that changes the
district's running setup leaves a row there, all of one shape. Against the real app and
PostgreSQL."""

from __future__ import annotations

import psycopg

from tests.conftest import RunningCenter


def test_setup_changes_are_written_to_the_ops_ledger(center: RunningCenter, db_dsn: str
                                                     ) -> None:
    op = center.client("op-01")
    r = op.put("/api/v1/emergency", json={"scope": "g-01", "active": True, "note": "typhoon",
                                          "broadcast": "all hands: clear drains"})
    assert r.status_code == 200
    assert op.get("/api/v1/emergency").json()["modes"][0]["note"] == "typhoon"
    assert op.put("/api/v1/emergency", json={"scope": "g-01", "active": False}).status_code == 200
    assert op.put("/api/v1/micro-grids/mg-011/posts", json={"A": "w-0121"}).status_code == 200
    assert op.post("/api/v1/auth/logout-all", json={}).status_code == 200

    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT actor_id, action, scope, note FROM ops_ledger"
                            " WHERE actor_id = 'op-01' ORDER BY id").fetchall()
    assert rows == [("op-01", "emergency_on", "g-01", "typhoon"),
                    ("op-01", "broadcast", "g-01", "all hands: clear drains"),
                    ("op-01", "emergency_off", "g-01", ""),
                    ("op-01", "set_posts", "mg-011", '{"A": "w-0121"}'),
                    ("op-01", "logout_all", "op-01", "")]
