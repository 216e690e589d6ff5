"""Business time: instants are aware datetimes; business dates are
Asia/Shanghai calendar dates (rule 4)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_date(instant: dt.datetime) -> dt.date:
    """The Asia/Shanghai calendar date of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("instant must be an aware datetime")
    return instant.astimezone(SHANGHAI).date()
