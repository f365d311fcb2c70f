"""Time limits per event type and stage, counted on a working-time calendar or round the clock.

"Handle within 2 hours" in a grid office means 2 working hours: a case dispatched at 17:00 on a
Friday is due on Monday morning. This module turns limits into due times; the loop never does
calendar arithmetic of its own.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wire.errors import describe, read_yaml

Stage = Literal["accept", "handle", "overall"]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    accept_min: float = Field(gt=0)
    handle_min: float = Field(gt=0)
    overall_min: float = Field(gt=0)
    round_the_clock: bool = False

    def minutes(self, stage: Stage) -> float:
        return {"accept": self.accept_min, "handle": self.handle_min,
                "overall": self.overall_min}[stage]


class Emergency(_Strict):
    factor: float = Field(default=0.5, gt=0, le=1)
    priority: int = 10


class Calendar(_Strict):
    timezone: str = "UTC"
    hours: dict[str, list[str]] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Asia" is a folder
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("hours")
    @classmethod
    def _windows(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, windows in value.items():
            if day not in _DAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(_DAYS)})")
            for w in windows:
                start, end = _parse_window(w)
                if end <= start:
                    raise ValueError(f"{day}: window {w!r} ends before it starts")
        return value

    def windows_on(self, day: date) -> list[tuple[datetime, datetime]]:
        tz = ZoneInfo(self.timezone)
        out = []
        for w in self.hours.get(_DAYS[day.weekday()], []):
            start, end = _parse_window(w)
            out.append((datetime.combine(day, start, tz), datetime.combine(day, end, tz)))
        return sorted(out)

    def add_working(self, start: datetime, minutes: float) -> datetime:
        """``start`` plus ``minutes`` of working time."""
        if not any(self.hours.values()):
            raise ValueError("the calendar has no working hours")
        left = timedelta(minutes=minutes)
        day = start.astimezone(ZoneInfo(self.timezone)).date()
        while True:
            for w_start, w_end in self.windows_on(day):
                begin = max(w_start, start)
                if begin >= w_end:
                    continue
                if begin + left <= w_end:
                    return begin + left
                left -= w_end - begin
            day += timedelta(days=1)


def _parse_window(text: str) -> tuple[time, time]:
    try:
        a, b = text.split("-")
        return time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
    except ValueError:
        raise ValueError(f"window {text!r} is not HH:MM-HH:MM") from None


class TimeLimits(_Strict):
    calendar: Calendar = Calendar()
    escalate_every_min: float = Field(default=30, gt=0)
    evaluate_within_min: float = Field(default=1440, gt=0)
    #: A leader or operator may urge one case at most once in this many minutes: an urge is
    #: loud on the phone, and a loud phone that rings every minute gets muted.
    urge_every_min: float = Field(default=5, gt=0)
    emergency: Emergency = Emergency()
    default: Limits
    event_types: dict[str, Limits] = {}
    #: A line department's own limits for the cases handed off to it (by department id): a
    #: department works to its own service commitments, not the micro-grid's.
    departments: dict[str, Limits] = {}

    def for_event(self, event_type: str, department: str | None = None) -> Limits:
        if department is not None and department in self.departments:
            return self.departments[department]
        return self.event_types.get(event_type, self.default)

    def due(self, event_type: str, stage: Stage, start: datetime, *,
            emergency: bool = False, department: str | None = None) -> datetime:
        """When ``stage`` is due for a case of ``event_type`` started at ``start``; a case in a
        department's queue (``department``) runs on that department's limits when it has any."""
        limits = self.for_event(event_type, department)
        minutes = limits.minutes(stage) * (self.emergency.factor if emergency else 1.0)
        if limits.round_the_clock:
            return start + timedelta(minutes=minutes)
        return self.calendar.add_working(start, minutes)


def load_time_limits(path: Path) -> TimeLimits:
    raw = read_yaml(Path(path), ValueError)
    try:
        return TimeLimits.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{path}: {describe(exc)}") from None
