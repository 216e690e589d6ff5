"""The outbox's retry rule (issue 16: it lives in outbox.policy)."""

import datetime as dt

import pytest

from outbox import policy


@pytest.mark.parametrize(
    ("attempts", "permanent", "expected"),
    [
        (1, False, dt.timedelta(minutes=1)),
        (2, False, dt.timedelta(minutes=2)),
        (4, False, dt.timedelta(minutes=8)),
        (5, False, None),  # max attempts made
        (1, True, None),  # a 5xx refusal is final
    ],
)
def test_retry_wait(attempts, permanent, expected):
    assert policy.retry_wait(attempts=attempts, permanent=permanent, max_attempts=5) == expected


def test_retry_wait_is_capped_at_an_hour():
    assert policy.retry_wait(attempts=20, permanent=False, max_attempts=99) == dt.timedelta(hours=1)
