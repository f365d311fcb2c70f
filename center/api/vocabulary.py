"""``GET /api/v1/vocabulary``: the ids the pages show and their names, from the center's own data.

The pages used to carry their own copies of the event-type table, the ticket states and which of
them are closed, and the edge's rule classes; the copies drifted (0507 and 0599 read differently
on the wall than in the center's table). Now the center is the one source: event types from the
table this deployment loaded (``settings.event_types``), states, open/closed and transitions from
the state machine (``center/domain/ticket_states.py``), rule types and detector classes from the
vocabulary the edge and the center share (``wire/vocabulary.py``), verdicts' false-alarm reasons
(``center/services/verdicts.py``), and their display names from
``vocabulary_names.yaml`` beside this module, which is checked against those ids when the center
starts. Public: the residents' pages name event types too, and none of it is secret. Every page
fetches it once per load (``dashboard/static/vocabulary.js``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from center.api.deps import CenterDep
from center.domain.ticket_states import OPEN, STATES, TERMINAL, TRANSITIONS
from center.services import verdicts
from wire.protocol import CameraState
from wire.vocabulary import OUR_CLASSES, RULE_CLASSES, RULE_DEFAULT_CLASSES, RULE_TYPES

router = APIRouter(prefix="/api/v1", tags=["vocabulary"])

NAMES_FILE = Path(__file__).with_name("vocabulary_names.yaml")
#: A camera nobody has heard from yet; the pages show it grey.
UNKNOWN_CAMERA_STATE = "unknown"


class Name(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str


class Names(BaseModel):
    """vocabulary_names.yaml: id -> name, per kind of id (insertion order is display order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    states: dict[str, Name]
    sources: dict[str, Name]
    camera_states: dict[str, Name]
    rule_types: dict[str, Name]
    classes: dict[str, Name]
    verdict_reasons: dict[str, Name]


def load_names(path: Path = NAMES_FILE) -> Names:
    """The names file, refused unless it names exactly the ids the center defines: a state,
    camera state, rule type or class added in code without a name would reach the pages as a
    bare id, and a name left over after an id was removed is a second, stale copy."""
    names = Names.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    expected = {
        "states": set(STATES),
        "camera_states": {*get_args(CameraState), UNKNOWN_CAMERA_STATE},
        "rule_types": set(RULE_TYPES),
        "classes": set(OUR_CLASSES),
        "verdict_reasons": set(verdicts.REASONS),
    }
    problems = [f"{kind}: missing {sorted(want - set(getattr(names, kind)))}, "
                f"unknown {sorted(set(getattr(names, kind)) - want)}"
                for kind, want in expected.items() if set(getattr(names, kind)) != want]
    if problems:
        raise ValueError(f"{path}: names do not match the center's ids: {'; '.join(problems)}")
    return names


NAMES = load_names()  # at import: a center with an unnamed state does not start


def _named(table: dict[str, Name], **extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": key, "zh": name.zh, "en": name.en,
             **{field: values[key] for field, values in extra.items()}}
            for key, name in table.items()]


def vocabulary(event_types: dict[str, Any]) -> dict[str, Any]:
    """The whole vocabulary for one deployment's event-type table (lists keep display order)."""
    return {
        "event_types": [{"code": code, "zh": e.zh, "en": e.en} for code, e in event_types.items()],
        "states": _named({s: NAMES.states[s] for s in STATES},
                         open={s: s in OPEN for s in STATES},
                         terminal={s: s in TERMINAL for s in STATES}),
        "transitions": [{"from": src, "action": action, "to": dst, "roles": sorted(roles)}
                        for (src, action), (dst, roles) in TRANSITIONS.items()],
        "sources": _named(NAMES.sources),
        "camera_states": _named(NAMES.camera_states),
        "rule_types": _named({r: NAMES.rule_types[r] for r in RULE_TYPES},
                             classes={r: list(RULE_CLASSES[r]) for r in RULE_TYPES},
                             default_classes={r: list(RULE_DEFAULT_CLASSES[r])
                                              for r in RULE_TYPES}),
        "classes": _named(NAMES.classes),
        "verdict_reasons": _named({r: NAMES.verdict_reasons[r] for r in verdicts.REASONS}),
    }


@router.get("/vocabulary")
async def get_vocabulary(center: CenterDep) -> dict[str, Any]:
    """Event types (code, zh, en), ticket states (with ``open``: the case is still being
    worked, and ``terminal``), the state machine's transitions (from, action, to, roles: what
    the phone shows before the center confirms a queued action), ticket sources, camera states,
    rule types (with the classes each accepts and uses by default), detector classes and the
    reasons a verdict may give for a false alarm, each with its zh and en name."""
    return vocabulary(center.ctx.event_types)
