"""Field types that the protocol's messages and the zone models share (``wire.protocol``,
``wire.zones``): kept apart so that a push message can hold zones and the zones can name their
ids and event codes without the two modules importing each other."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: An edge, camera, zone or rule id: safe in an MQTT topic and a file name.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
#: An event type code of the district's catalogue (0504, 0506...).
EventCode = Annotated[str, Field(pattern=r"^\d{4,6}$")]
