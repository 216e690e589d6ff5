"""P6 mail intake run twice at once on the same message (two cron runs that
overlap, or a retried delivery): two real ``ingest_complaint_mail`` processes,
each with its own database connection, both past the duplicate check before
either commits. The unique Message-ID holds: one complaint is filed, the other
run counts a duplicate, and neither fails."""

import subprocess
import sys

import pytest
from django.db import connection, transaction
from django.utils import timezone

from complaints.models import Complaint, ComplaintMessage
from tests.renewals.conftest import ROOT, _worker_env, wait_for

from .test_intake import eml

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE_ID = "<race@mail.example.com>"


class _Rollback(Exception):
    pass


def _waiting_on_locks(exclude: int) -> list[int]:
    with connection.cursor() as cur:
        # Inside a transaction, PostgreSQL keeps one statistics snapshot: drop it.
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return [pid for (pid,) in cur.fetchall() if pid != exclude]


def test_p6_two_intakes_of_the_same_message_at_once_file_one_complaint(account, tmp_path):
    path = tmp_path / "race.eml"
    path.write_bytes(eml(sender=account.email, message_id=MESSAGE_ID))
    cmd = [sys.executable, "manage.py", "ingest_complaint_mail", str(path)]
    procs = []
    try:
        # An uncommitted row with the same Message-ID: each intake sees no
        # duplicate, opens its complaint and blocks on the unique index. When
        # both are blocked there, the row goes away and they race for real.
        with transaction.atomic():
            holder = Complaint.objects.create(
                channel="email",
                subject="holder",
                received_at=timezone.now(),
                opened_at=timezone.now(),
                first_response_due=timezone.now(),
                resolution_due=timezone.now(),
            )
            ComplaintMessage.objects.create(
                complaint=holder,
                kind="customer",
                body="holder",
                created_at=timezone.now(),
                message_id=MESSAGE_ID,
            )
            own_pid = connection.connection.info.backend_pid
            procs = [
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=_worker_env(ENV_FILE=""),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            wait_for(
                lambda: (
                    len(_waiting_on_locks(own_pid)) == 2 or any(p.poll() is not None for p in procs)
                ),
                timeout=120,
                what="both intakes to wait on the same Message-ID",
            )
            transaction.set_rollback(True)
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    lines = sorted(out.strip() for out, _err in outputs)
    assert lines == ["filed=0 threaded=0 duplicates=1", "filed=1 threaded=0 duplicates=0"]
    complaint = Complaint.objects.get()
    assert (complaint.account, complaint.reference) == (account, MESSAGE_ID)
    assert ComplaintMessage.objects.get().message_id == MESSAGE_ID
    # The losing run left nothing behind, not even a history row.
    assert Complaint.history.count() == 1
