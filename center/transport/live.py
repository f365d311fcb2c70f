"""Live view messages from the edges (``live-data``, ``live-state``) into the live service.

Ingest hands them here one by one (``center.transport.ingest``); nothing is stored in the
database, so a burst of video never waits on PostgreSQL. A message that does not parse, names
another edge or camera than its topic, or a camera the district does not give that edge, is
refused with the reason (ingest keeps it as a dead letter) and changes no stream.
"""

from __future__ import annotations

from pydantic import ValidationError

from center.domain.district import District
from center.services.edge_state import not_given
from center.services.live import LiveService
from wire.errors import describe
from wire.protocol import LiveChunk, LiveState

KINDS = frozenset({"live-data", "live-state"})


def handle(service: LiveService, district: District, kind: str, ids: list[str],
           payload: bytes) -> str | None:
    """Take one live message; why it was refused, or None."""
    if len(ids) != 2:
        return f"a {kind} topic names an edge and a camera"
    model: type[LiveChunk] | type[LiveState] = LiveChunk if kind == "live-data" else LiveState
    try:
        message = model.model_validate_json(payload)
    except ValidationError as exc:
        return describe(exc, with_input=False)
    if [message.edge_id, message.camera_id] != ids:
        return (f"{kind} for {message.edge_id}/{message.camera_id} published under "
                f"{'/'.join(ids)}")
    if not_given(district, message.edge_id, [message.camera_id]):
        return f"camera {message.camera_id} is not given to edge {message.edge_id}"
    if isinstance(message, LiveChunk):
        return service.chunk(message)
    return service.state(message)
