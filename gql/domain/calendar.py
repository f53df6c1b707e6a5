"""Calendar arithmetic for validity periods."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime


def add_months(at: datetime, months: int) -> datetime:
    """`at` plus calendar months, clamped to the month's end (Jan 31 + 1 month = Feb 28/29).

    Months are counted on the UTC calendar, so one instant expires at one instant whatever
    offset it came with: Jan 30 23:00 -05:00 is Jan 31 04:00 UTC, and + 1 month is Feb 28
    04:00 UTC (counted on the local calendar it would be Feb 28 23:00 -05:00, a day later).
    """
    at = at.astimezone(UTC)
    month_index = at.month - 1 + months
    year, month = at.year + month_index // 12, month_index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)
