"""Item 7: ``Acceptance`` is append-only like the ledger (ORM and database
trigger); a new agreement version cannot take effect in the past, and a
version in force is never changed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Acceptance, AgreementVersion, LedgerEntry
from billing.selectors import agreement_in_force
from tests.adminforms import staff_login

from .. import factories
from ..adminforms import money_post

pytestmark = pytest.mark.django_db


def _refused(sql, params=()):
    with (
        pytest.raises(DatabaseError) as exc,
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(sql, params)
    return str(exc.value)


@pytest.fixture
def accepted(account):
    return Acceptance.objects.get(account=account)


# --- acceptances: append-only ------------------------------------------------------


def test_the_orm_refuses_to_change_or_remove_an_acceptance(accepted):
    accepted.user_agent = "forged"
    with pytest.raises(TypeError, match="append-only"):
        accepted.save()
    with pytest.raises(TypeError, match="append-only"):
        accepted.delete()
    with pytest.raises(TypeError, match="append-only"):
        Acceptance.objects.filter(pk=accepted.pk).update(method="click")
    with pytest.raises(TypeError, match="append-only"):
        Acceptance.objects.filter(pk=accepted.pk).delete()
    fresh = Acceptance.objects.get(pk=accepted.pk)
    assert fresh.user_agent == accepted.history.first().user_agent


def test_the_database_refuses_update_and_delete_of_an_acceptance(accepted):
    msg = _refused(
        "UPDATE billing_acceptance SET ip_address = '198.51.100.1' WHERE id = %s", [accepted.pk]
    )
    assert "billing_acceptance is append-only: UPDATE refused" in msg
    msg = _refused("DELETE FROM billing_acceptance WHERE id = %s", [accepted.pk])
    assert "billing_acceptance is append-only: DELETE refused" in msg
    assert Acceptance.objects.filter(pk=accepted.pk).exists()


@pytest.mark.parametrize("table", ["billing_acceptance", "billing_ledgerentry"])
def test_the_database_refuses_truncate(accepted, table):
    """TRUNCATE goes past row triggers; a statement trigger refuses it. (The
    test session may let the test runner's flush through; here
    that is switched off for the transaction, as in production.)"""
    with (
        pytest.raises(DatabaseError, match=f"{table} is append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks from the fixture
        cur.execute("SET LOCAL billing.allow_truncate = 'off'")
        cur.execute(f"TRUNCATE {table} CASCADE")
    assert Acceptance.objects.filter(pk=accepted.pk).exists()


def test_a_new_acceptance_is_still_recorded(account, t0):
    """Append-only, not read-only: acceptances are added as before (P0)."""
    version = factories.make_agreement(effective_from=t0 - dt.timedelta(days=1), version="2025-03")
    services.agreement_accept(account=account, user=account.owner, version=version, now=t0)
    assert Acceptance.objects.filter(account=account).count() == 2


# --- agreement versions -----------------------------------------------------------------


@pytest.fixture
def publisher(db):
    return factories.make_staff("legal", group="admin")


def test_publish_a_version_from_now_or_later(publisher, agreement, t0):
    version = services.agreement_version_publish(
        version="2025-04-01",
        text="New text",
        effective_from=t0 + dt.timedelta(days=29),
        actor=publisher,
        now=t0,
    )
    assert version.history.get().history_change_reason == "P0 agreement version published"
    assert version.history.get().history_user == publisher
    # At that instant it is the version in force; before, the old one.
    assert agreement_in_force(at=t0 + dt.timedelta(days=29)) == version
    assert agreement_in_force(at=t0) == agreement
    exactly_now = services.agreement_version_publish(
        version="2025-03-03", text="x", effective_from=t0, actor=publisher, now=t0
    )
    assert exactly_now.effective_from == t0


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"effective_from": -1}, "effective_from", "cannot take effect in the past"),
        ({"version": "2024-02-05"}, "version", "already exists"),
        ({"version": "  "}, "version", "Name the version"),
        ({"text": ""}, "text", "Give the text"),
        ({"effective_from": "naive"}, "effective_from", "with its time zone"),
        ({"effective_from": "same"}, "effective_from", "already takes effect at that instant"),
    ],
)
def test_publish_refuses_bad_input(publisher, agreement, t0, change, field, message):
    kwargs = {
        "version": "2025-04-01",
        "text": "New text",
        "effective_from": t0 + dt.timedelta(days=1),
        **change,
    }
    kwargs["effective_from"] = {
        -1: t0 - dt.timedelta(seconds=1),
        "naive": dt.datetime(2025, 4, 1),
        "same": agreement.effective_from,
    }.get(kwargs["effective_from"], kwargs["effective_from"])
    if change.get("effective_from") == "same":
        kwargs["now"] = agreement.effective_from
    before = AgreementVersion.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.agreement_version_publish(actor=publisher, **{"now": t0, **kwargs})
    assert message in exc.value.message_dict[field][0]
    assert AgreementVersion.objects.count() == before


def test_only_staff_with_the_permission_publish(agreement, finance_user, support_user, t0):
    for actor in (finance_user, support_user, None):
        with pytest.raises(ValidationError, match="publish an agreement version"):
            services.agreement_version_publish(
                version="2025-04-01",
                text="x",
                effective_from=t0 + dt.timedelta(days=1),
                actor=actor,
                now=t0,
            )
    assert AgreementVersion.objects.count() == 1


def test_the_database_refuses_to_change_a_version_in_force(agreement):
    msg = _refused(
        "UPDATE billing_agreementversion SET text = 'rewritten' WHERE id = %s", [agreement.pk]
    )
    assert "is in force since" in msg and "UPDATE refused" in msg
    msg = _refused(
        "UPDATE billing_agreementversion SET effective_from = now() + interval '1 day' "
        "WHERE id = %s",
        [agreement.pk],
    )
    assert "UPDATE refused" in msg
    msg = _refused("DELETE FROM billing_agreementversion WHERE id = %s", [agreement.pk])
    assert "DELETE refused" in msg
    assert AgreementVersion.objects.get(pk=agreement.pk).text == "Refund Agreement text"


def test_a_version_not_yet_in_force_may_still_be_corrected_in_the_database(agreement):
    """The trigger guards versions in force; one still in the future is not
    yet binding on anyone (the admin offers no edit either way)."""
    future = factories.make_agreement(
        effective_from=timezone.now() + dt.timedelta(days=30), version="future"
    )
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_agreementversion SET text = 'typo fixed' WHERE id = %s", [future.pk]
        )
    assert AgreementVersion.objects.get(pk=future.pk).text == "typo fixed"


# --- the admin add form goes through the service -------------------------------------------


def _local(delta):
    return (timezone.localtime() + delta).strftime("%Y-%m-%dT%H:%M")


def test_admin_add_publishes_through_the_service(client, publisher, agreement):
    staff_login(client, publisher)
    url = reverse("admin:billing_agreementversion_add")
    data = {"version": "2099-01", "title": "Refund Agreement", "text": "New"}
    past = money_post(client, url, {**data, "effective_from": _local(-dt.timedelta(days=1))})
    assert past.status_code == 200
    assert "cannot take effect in the past" in past.content.decode()
    assert not AgreementVersion.objects.filter(version="2099-01").exists()
    done = money_post(
        client, url, {**data, "effective_from": _local(dt.timedelta(days=7))}, follow=True
    )
    assert "Published Refund Agreement 2099-01" in done.content.decode()
    version = AgreementVersion.objects.get(version="2099-01")
    assert version.history.get().history_user == publisher
    # Existing versions are read only in the admin.
    change = reverse("admin:billing_agreementversion_change", args=[version.pk])
    assert client.post(change, {"text": "edited"}).status_code == 403


def test_support_and_finance_cannot_publish_in_admin(client, support_user, finance_user):
    for user in (support_user, finance_user):
        staff_login(client, user)
        url = reverse("admin:billing_agreementversion_add")
        assert client.get(url).status_code == 403
    assert not LedgerEntry.objects.exists()
