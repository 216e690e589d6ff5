"""RefundRequest's database constraints (P1) and its reversible migrations."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from billing.policy import SHANGHAI as SH
from refunds.models import RefundRequest

from .. import factories

AT = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)


@pytest.fixture
def order(catalog, agreement):
    account = factories.make_account("Constraints", now=AT, balance_fen=50_000)
    return factories.buy(account, catalog["pro-monthly"], now=AT)


def make(order_, **kw):
    base = dict(
        account_id=order_.account_id,
        order=order_,
        channel="email",
        requested_at=AT,
        decision="exception",
        exception_code="E4",
        max_amount_fen=1_000,
        status="pending",
    )
    base.update(kw)
    return RefundRequest.objects.create(**base)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        {"amount_fen": 0},
        {"amount_fen": -5},
        {"max_amount_fen": -1},
        {"amount_fen": 1_001},
        {"order": None},  # a refund names its order
    ],
)
def test_bad_rows_refused_by_the_database(order, bad):
    with pytest.raises(IntegrityError), transaction.atomic():
        make(order, **bad)


@pytest.mark.django_db
def test_one_open_request_per_order(order):
    make(order)
    make(order, status="refused", exception_code="")  # closed ones may repeat
    with pytest.raises(IntegrityError), transaction.atomic():
        make(order, status="awaiting_second_approval", exception_code="E1")


@pytest.mark.django_db
def test_detected_once_per_order_and_exception(order):
    make(order, channel="detected", status="refused")
    with pytest.raises(IntegrityError), transaction.atomic():
        make(order, channel="detected", status="pending")
    make(order, channel="detected", exception_code="E2")


@pytest.mark.django_db(transaction=True)
def test_refunds_and_payout_migrations_reverse():
    executor = MigrationExecutor(connection)
    executor.migrate([("refunds", None)])
    executor.loader.build_graph()
    executor.migrate([("billing", "0011_translatable_labels")])
    executor.loader.build_graph()
    tables = connection.introspection.table_names()
    assert "refunds_refundrequest" not in tables
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert "refunds_refundrequest" in connection.introspection.table_names()
