"""The outbox's retry rule (issue 16: one rule for every email): pure, no
ORM, no clock, no I/O."""

from __future__ import annotations

import datetime as dt

RETRY_FIRST_WAIT = dt.timedelta(minutes=1)
RETRY_MAX_WAIT = dt.timedelta(hours=1)


def retry_wait(*, attempts: int, permanent: bool, max_attempts: int) -> dt.timedelta | None:
    """After a failed attempt (``attempts`` made so far): how long to wait
    before the next one (1, 2, 4 ... minutes, at most an hour), or ``None`` to
    give up: the server refused the message for good (a 5xx reply), or
    ``max_attempts`` have been made."""
    if permanent or attempts >= max_attempts:
        return None
    return min(RETRY_FIRST_WAIT * 2 ** max(attempts - 1, 0), RETRY_MAX_WAIT)
