"""Calendar arithmetic for validity periods, and the organisation's calendar days (the time
zone of CERTGRAPH_TIME_ZONE, passed down; UTC by default)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, tzinfo


def add_months(at: datetime, months: int, zone: tzinfo = UTC) -> datetime:
    """`at` plus calendar months, clamped to the month's end (Jan 31 + 1 month = Feb 28/29),
    returned in UTC.

    Months are counted on the calendar of `zone` (the organisation's), so one instant expires
    at one instant whatever offset it came with, and on the day `add_months_to_date` gives
    for the day it started on there: Jan 30 23:00 -05:00 is Jan 31 04:00 UTC, and + 1 month
    on the UTC calendar is Feb 28 04:00 UTC.
    """
    local = at.astimezone(zone)
    day = add_months_to_date(local.date(), months)
    # the same wall-clock time on that day; in a DST gap fold=0 reads it with the offset
    # before the change, which still lands on that day
    moved = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return moved.astimezone(UTC)


def add_months_to_date(day: date, months: int) -> date:
    """`day` plus calendar months, clamped to the month's end (2026-01-31 + 1 = 2026-02-28)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def day_of(at: datetime, zone: tzinfo = UTC) -> date:
    """The calendar day of an instant in `zone`."""
    return at.astimezone(zone).date()


def start_of_day(day: date, zone: tzinfo = UTC) -> datetime:
    """The first instant of `day` in `zone`, in UTC (a day that begins in a DST gap begins
    when the clocks jump)."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
