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


# The one way staff read an instant (issue 10): Shanghai wall-clock time with
# seconds, the same in every language ("2026-11-27 10:00:00"). Django's own
# rendering uses the same pattern (config/formats).
INSTANT_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_instant(instant: dt.datetime) -> str:
    """An aware instant as Asia/Shanghai time with seconds: ``2026-11-27 10:00:00``."""
    if instant.tzinfo is None:
        raise ValueError("instant must be an aware datetime")
    return instant.astimezone(SHANGHAI).strftime(INSTANT_FORMAT)
