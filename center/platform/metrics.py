"""Prometheus metrics at /metrics: what an operator's monitoring needs to see the center work.

Counters that live in other objects (ingest stats, websocket clients) are read at scrape time
by a collector, so the hot paths keep their plain integer counters and pay nothing extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fastapi import FastAPI

#: One per process, like the state machine it counts.
TICKET_TRANSITIONS = Counter(
    "gridwatch_ticket_transitions_total", "Ticket state-machine actions taken",
    ["action", "to_state"], registry=None)


class _CenterCollector(Collector):
    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        ingest = getattr(self._app.state, "ingest", None)
        if ingest is not None:
            for name, help_ in (("received", "MQTT messages received"),
                                ("stored", "Alert messages stored"),
                                ("duplicates", "Alert messages already stored (redeliveries)"),
                                ("dead_letters", "Messages rejected to the dead-letter table"),
                                ("conflicts", "Re-sent (alert_id, seq) unlike the stored copy"),
                                ("acked", "MQTT messages acknowledged (their batch handled)")):
                yield CounterMetricFamily(f"gridwatch_ingest_{name}", help_,
                                          value=getattr(ingest.stats, name))
            yield GaugeMetricFamily("gridwatch_mqtt_connected", "1 when the ingest is connected",
                                    value=int(ingest.connected))
            yield from _progress(ingest.progress())
        live = getattr(self._app.state, "live", None)
        if live is not None:
            yield from _live(live)
        center = getattr(self._app.state, "center", None)
        if center is None:
            return
        hub = center.hub
        yield GaugeMetricFamily("gridwatch_websocket_clients", "Connected screens and phones",
                                value=hub.client_count)
        yield CounterMetricFamily("gridwatch_websocket_dropped_clients",
                                  "Clients dropped for falling behind",
                                  value=hub.dropped_clients)
        yield CounterMetricFamily("gridwatch_websocket_coalesced_clients",
                                  "Times a client fell behind and its outbox began coalescing "
                                  "(latest state per ticket and a summary, not dropped)",
                                  value=hub.coalesced_clients)
        yield CounterMetricFamily("gridwatch_websocket_folded_events",
                                  "Events folded into a newer state of the same key while a "
                                  "client was coalescing", value=hub.folded_events)


def _live(live: Any) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """Live view (center/services/live.py): streams and viewers now, and what went through."""
    streams = live.streams()
    yield GaugeMetricFamily("gridwatch_live_streams", "Live streams the center holds now",
                            value=len(streams))
    yield GaugeMetricFamily("gridwatch_live_viewers", "People watching a live stream now",
                            value=sum(len(s.viewers) for s in streams))
    counts = live.counts
    for name, help_ in (("started", "Live streams asked of an edge"),
                        ("transcoded", "Live streams the edge re-encoded (not H.264)"),
                        ("segments", "Live segments completed from the edges' chunks"),
                        ("chunks_refused", "Live chunks refused (inconsistent or too large)"),
                        ("served_bytes", "Live segment bytes served to viewers")):
        yield CounterMetricFamily(f"gridwatch_live_{name}", help_, value=getattr(counts, name))


def _progress(progress: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The ingest's progress (``Ingest.progress``): alert on ``gridwatch_ingest_stalled``, or on
    ``in_hand_seconds`` with a threshold of your own."""
    for key, name, help_ in (
            ("waiting", "waiting_messages", "Messages received and not yet taken into a batch"),
            ("in_hand", "in_hand_messages", "Messages of the batch being handled"),
            ("in_hand_s", "in_hand_seconds", "Age of the batch being handled (0: none)"),
            ("last_progress_s", "last_progress_age_seconds",
             "Seconds since a batch was last handled and acknowledged")):
        yield GaugeMetricFamily(f"gridwatch_ingest_{name}", help_, value=progress[key])
    yield GaugeMetricFamily("gridwatch_ingest_stalled",
                            "1 when the ingest makes no progress (/healthz says why)",
                            value=int(progress["stalled"] is not None))


def registry_for(app: FastAPI) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_CenterCollector(app))
    registry.register(TICKET_TRANSITIONS)
    return registry
