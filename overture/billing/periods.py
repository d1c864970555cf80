"""The period a usage report covers: whole UTC hours, since (inclusive) to until
(exclusive), as the roll-ups are kept.

    period = parse(since="2026-12-01", until="2026-12-07")   # whole days, both included
    period = parse(month="2026-12")                           # a calendar month
    period = parse()                                          # this month, so far

A date means its whole day (a `until` date includes that day); a time must be on the
hour (roll-ups are hourly) and without a zone is UTC. Anything else is a 422 naming the
field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from overture.platform.db import utcnow
from overture.platform.errors import ValidationFailed

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_DAYS = 366  # a report's longest period (a year, by day, stays a few hundred rows)


@dataclass(frozen=True)
class Period:
    since: datetime  # inclusive, on the hour, UTC
    until: datetime  # exclusive, on the hour, UTC

    @property
    def days(self) -> list[date]:
        """The UTC days the period touches, in order."""
        first, last = self.since.date(), (self.until - HOUR).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def split(self) -> tuple[datetime, datetime]:
        """(a, b): [since, a) and [b, until) are hours of partial days, [a, b) whole
        days (a == b when the period holds no whole day)."""
        a = midnight(self.since) if self.since == midnight(self.since) \
            else midnight(self.since) + DAY
        b = midnight(self.until)
        return (a, b) if a < b else (self.until, self.until)


def midnight(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def month_of(at: datetime) -> Period:
    start = midnight(at.astimezone(UTC)).replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period(start, following)


def this_month(now: datetime | None = None) -> Period:
    """The calendar month so far: up to the end of the current hour."""
    now = (now or utcnow()).astimezone(UTC)
    return Period(month_of(now).since, now.replace(minute=0, second=0, microsecond=0) + HOUR)


def parse(since: str | None = None, until: str | None = None, month: str | None = None,
          now: datetime | None = None) -> Period:
    """The period the query names (see the module's docstring); ValidationFailed else."""
    since, until, month = (v.strip() if v else None for v in (since, until, month))
    if month:
        if since or until:
            raise ValidationFailed.field("month", "give a month, or since and until, not both")
        try:
            first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ValidationFailed.field("month", "a month as YYYY-MM") from None
        return month_of(first)
    current = this_month(now)
    start = _instant("since", since, end=False) if since else current.since
    end = _instant("until", until, end=True) if until else current.until
    if not since and until:
        start = month_of(end - HOUR).since
    if start >= end:
        raise ValidationFailed.field("until", "must be after since")
    if end - start > timedelta(days=MAX_DAYS):
        raise ValidationFailed.field("until", f"a period spans at most {MAX_DAYS} days")
    return Period(start, end)


def _instant(name: str, value: str, end: bool) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is not None:
        at = datetime.combine(day, datetime.min.time(), UTC)
    else:
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed.field(name, "a date (YYYY-MM-DD) or a time on the hour "
                                               "(ISO 8601)") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        if (at.minute, at.second, at.microsecond) != (0, 0, 0):
            raise ValidationFailed.field(name, "must be on the hour: usage is kept by the hour")
    if not 2000 <= at.year <= 9998:
        raise ValidationFailed.field(name, "out of range")
    return at + DAY if day is not None and end else at
