"""Names that the edge's configs and the center's pages must agree on: the detector classes
after class mapping, the rule types and the classes each watches, the days of a schedule.

The edge validates zone rules against them; the center serves them to the pages
(``/api/v1/vocabulary``) and checks districts' duty windows; one copy for both."""

from __future__ import annotations

from typing import Literal

#: The detector's output vocabulary after class mapping (see models/registry.yaml). ``scooter``
#: (kick scooters, shared stand-up e-scooters) is kept apart from ``two_wheeler`` because
#: whether one left on the pavement is a violation is a local choice.
OUR_CLASSES = frozenset({"two_wheeler", "person", "vending_cue", "car", "scooter"})

RuleType = Literal["illegal_parking", "doorway_trading"]
RULE_TYPES: tuple[RuleType, ...] = ("illegal_parking", "doorway_trading")
#: Classes each rule type accepts (and uses when ``classes`` is left out).
RULE_CLASSES: dict[str, tuple[str, ...]] = {
    "illegal_parking": ("two_wheeler", "car", "scooter"),
    "doorway_trading": ("vending_cue", "person", "car")}
RULE_DEFAULT_CLASSES: dict[str, tuple[str, ...]] = {
    "illegal_parking": ("two_wheeler",),
    "doorway_trading": ("vending_cue", "person", "car")}

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: Monday first, as ``datetime.weekday()`` counts.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
