"""Event-level scoring: alerts against labelled violation intervals, the way an operator judges
the edge (was the violation reported, how soon, and how often did it cry wolf), not per-box.

An alert is its ``new`` message: the time it was raised, in seconds of stream time. It is
**true** when it is the first alert of the same zone and event type raised during a labelled
violation (from its ``start`` to its ``end`` plus the set's tolerance); every other alert, a
second one for the same violation included, is a **false alarm**. Precision is true alerts /
alerts, recall is violations reported / violations, time to alert is the raising time minus
the violation's ``start`` (dwell included: that is what the operator waits).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from edge.eval.labels import Quiet, Violation


@dataclass(frozen=True)
class Raised:
    """One alert as the evaluator sees it."""

    zone: str
    event_type: str
    #: Stream time (s) of its ``new`` message.
    at: float
    label: str = ""
    score: float = 0.0


@dataclass
class EventScore:
    """Event figures of one case, or of a whole set (``add``)."""

    violations: int = 0
    reported: int = 0
    alerts: int = 0
    true_alerts: int = 0
    #: Stream hours analysed: the denominator of false alarms per camera-hour.
    hours: float = 0.0
    times_to_alert: list[float] = field(default_factory=list)
    false_alarms: list[Raised] = field(default_factory=list)
    missed: list[Violation] = field(default_factory=list)
    #: Must-stay-quiet intervals during which something was raised.
    quiet_broken: list[Quiet] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.reported / self.violations if self.violations else None

    @property
    def false_per_hour(self) -> float | None:
        return len(self.false_alarms) / self.hours if self.hours else None

    @property
    def right(self) -> bool:
        """Every violation reported and nothing else raised."""
        return not self.missed and not self.false_alarms

    def add(self, other: EventScore) -> None:
        self.violations += other.violations
        self.reported += other.reported
        self.alerts += other.alerts
        self.true_alerts += other.true_alerts
        self.hours += other.hours
        self.times_to_alert += other.times_to_alert
        self.false_alarms += other.false_alarms
        self.missed += other.missed
        self.quiet_broken += other.quiet_broken

    def summary(self) -> dict[str, Any]:
        """The figures as plain JSON values (None where a ratio has no denominator)."""
        tta = self.times_to_alert
        return {
            "violations": self.violations, "reported": self.reported, "alerts": self.alerts,
            "true_alerts": self.true_alerts, "false_alarms": len(self.false_alarms),
            "precision": self.precision, "recall": self.recall,
            "camera_hours": self.hours, "false_alarms_per_camera_hour": self.false_per_hour,
            "time_to_alert_s": {"mean": statistics.fmean(tta), "median": statistics.median(tta),
                                "max": max(tta)} if tta else None,
            "quiet_broken": len(self.quiet_broken),
        }


def score_events(violations: list[Violation], quiet: list[Quiet], raised: list[Raised],
                 hours: float, tolerance_s: float) -> EventScore:
    """Match one camera's alerts to its labelled violations (see the module's docstring).

    Example (a violation from 2 s to 10 s reported at 6 s, a second alert at 8 s):
        >>> v = Violation(zone="z", event_type="0506", start=2, end=10)
        >>> s = score_events([v], [], [Raised("z", "0506", 6.0), Raised("z", "0506", 8.0)],
        ...                  hours=0.01, tolerance_s=0)
        >>> s.precision, s.recall, s.times_to_alert, len(s.false_alarms)
        (0.5, 1.0, [4.0], 1)
    """
    score = EventScore(violations=len(violations), alerts=len(raised), hours=hours)
    matched: set[int] = set()
    for alert in sorted(raised, key=lambda a: a.at):
        for i, v in enumerate(violations):
            if (i not in matched and v.zone == alert.zone and v.event_type == alert.event_type
                    and v.start <= alert.at <= v.end + tolerance_s):
                matched.add(i)
                score.times_to_alert.append(alert.at - v.start)
                break
        else:
            score.false_alarms.append(alert)
    score.reported = score.true_alerts = len(matched)
    score.missed = [v for i, v in enumerate(violations) if i not in matched]
    score.quiet_broken = [q for q in quiet if any(
        (q.zone is None or q.zone == a.zone) and q.start <= a.at <= q.end + tolerance_s
        for a in raised)]
    return score
