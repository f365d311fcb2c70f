"""The event-type code table (GB/T 30428 codes plus local extensions), kept as data."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from wire.errors import describe, read_yaml


class EventType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str


class _Table(RootModel[dict[str, EventType]]):
    pass


def load_event_types(path: Path) -> dict[str, EventType]:
    raw = read_yaml(Path(path), ValueError)
    try:
        table = _Table.model_validate(raw).root
    except ValidationError as exc:
        raise ValueError(f"{path}: bad event-type table: {describe(exc)}") from None
    bad = [code for code in table if not (code.isdigit() and 4 <= len(code) <= 6)]
    if bad:
        raise ValueError(f"{path}: codes must be 4-6 digits: {', '.join(bad)}")
    return table
