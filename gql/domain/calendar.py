"""Calendar arithmetic for validity periods."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(at: datetime, months: int) -> datetime:
    """`at` plus calendar months, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    month_index = at.month - 1 + months
    year, month = at.year + month_index // 12, month_index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)
