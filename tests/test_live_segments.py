"""The center's in-memory live playlist: what it lists and what it still serves.

A unit test of ``center.services.live.LiveService`` with a recording publisher (it stands for
the MQTT client; no production code is replaced): segments that slid off the playlist stay
fetchable for as many segments again, as RFC 8216 6.2.2 asks, so a player that read the
playlist just before they went gets them, not a 404.
"""

from __future__ import annotations

import asyncio

from center.platform.settings import LiveSettings
from center.services.live import LiveService
from wire.protocol import LiveChunk

KEPT = 3


def _service() -> tuple[LiveService, list[tuple[str, str]]]:
    sent: list[tuple[str, str]] = []

    async def publish(topic: str, payload: str) -> None:
        sent.append((topic, payload))

    return LiveService(LiveSettings(segments_kept=KEPT), publish), sent


def test_segments_off_the_playlist_stay_fetchable_for_as_long_again() -> None:
    live, sent = _service()
    stream = asyncio.run(live.open("cam-1", "edge-1", "op-01"))
    assert sent, "the edge was asked for the stream"
    for seq in range(10):
        refused = live.chunk(LiveChunk(edge_id="edge-1", camera_id="cam-1",
                                       stream_id=stream.stream_id, seq=seq, part=0, parts=1,
                                       duration_s=1.0, data=bytes([seq]) * 10))
        assert refused is None
    playlist = live.playlist(stream, lambda s: f"{s.msn}.ts")
    listed = [int(line.removesuffix(".ts")) for line in playlist.splitlines()
              if line.endswith(".ts")]
    assert listed == [7, 8, 9]
    assert "#EXT-X-MEDIA-SEQUENCE:7" in playlist
    fetchable = [msn for msn in range(10) if stream.segment(msn) is not None]
    assert fetchable == [4, 5, 6, 7, 8, 9]
    found = stream.segment(5)
    assert found is not None and found.data == bytes([5]) * 10


def test_a_new_stream_has_its_viewer_while_the_edge_is_asked() -> None:
    """The ask to the edge awaits the broker, and the service's loop (``tick``) runs
    meanwhile: it must not find the new stream viewerless and stop it, or the asker gets a
    playlist that 404s (seen in a full test run on a loaded box)."""
    live: LiveService

    async def publish(topic: str, payload: str) -> None:
        await live.tick()  # the loop's turn while the publish waits for the broker's ack

    live = LiveService(LiveSettings(), publish)
    stream = asyncio.run(live.open("cam-1", "edge-1", "op-01"))
    assert live.find("cam-1", stream.stream_id) is stream and stream.state == "starting"
