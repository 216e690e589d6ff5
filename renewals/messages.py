"""Customer messages (P4, P5 fair-use), in the account's language (rule 10).

The texts are gettext msgids: English here, Simplified Chinese (and any
language added later) in the catalogue under ``locale/``. ``render`` formats
them with ``translation.override(language)``, so a message is in the
customer's language whatever language the process (a Celery worker, a staff
member's request) runs in. Plain format strings rather than templates: a
100,000-renewal run writes one receipt per renewal, and these are cheap to
render."""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from core.text import safe_subject

LANGUAGES = ("en", "zh-hans")
DEFAULT_LANGUAGE = "en"


def _how_to_notify() -> str:
    return _(
        "To stop the renewal, give notice on your account page (Subscription > Do not renew), "
        "or email support, by the deadline."
    )


def _templates(kind: str) -> tuple[str, str]:
    """(subject, body) of ``kind`` in the active language."""
    if kind == "reminder":
        return (
            _("Your %(package)s renews on %(expiry)s"),
            _(
                "Dear %(account)s,\n\nYour %(package)s package expires on %(expiry)s. Unless "
                "you give notice of non-renewal by %(deadline)s%(provisional)s, %(amount)s will "
                "be deducted from your balance on that day for the next %(months)s-month "
                "cycle.\nYour balance is %(balance)s: %(covers)s.\n\n%(how)s\n"
            ),
        )
    if kind == "last_reminder":
        return (
            _("Last reminder: notice deadline %(deadline)s"),
            _(
                "Dear %(account)s,\n\nThis is the last reminder: the deadline to give notice "
                "of non-renewal for your %(package)s package (expiring %(expiry)s) is "
                "%(deadline)s%(provisional)s. After it, %(amount)s will be deducted on "
                "%(expiry)s.\nYour balance is %(balance)s: %(covers)s.\n\n%(how)s\n"
            ),
        )
    if kind == "price_change":
        return (
            _("New price from your next renewal on %(expiry)s"),
            _(
                "Dear %(account)s,\n\nThe price of %(package)s changes. Your renewal on "
                "%(expiry)s will be charged at the new price: %(amount)s (currently "
                "%(old_amount)s). If you do not want to renew at this price, give notice by "
                "%(deadline)s%(provisional)s.\n\n%(how)s\n"
            ),
        )
    if kind == "receipt":
        return (
            _("Receipt: %(package)s renewed"),
            _(
                "Dear %(account)s,\n\nWe deducted %(amount)s from your balance for "
                "%(package)s, %(period_start)s to %(expiry)s. Order #%(order)s. Your balance "
                "is now %(balance)s.\n"
            ),
        )
    if kind == "past_due":
        return (
            _("Your %(package)s could not be renewed"),
            _(
                "Dear %(account)s,\n\nYour balance (%(balance)s) does not cover the renewal of "
                "%(package)s (%(amount)s); nothing was deducted. Top up at least %(shortfall)s "
                "by %(grace_end)s and it renews with no gap; otherwise your account moves to "
                "the free package.\n"
            ),
        )
    if kind == "ended":
        return (
            _("Your %(package)s has ended"),
            _(
                "Dear %(account)s,\n\nYour %(package)s package ended on %(expiry)s. Your "
                "account is now on the free package, free forever. You can buy a package "
                "again at any time.\n"
            ),
        )
    if kind == "notice_given":
        return (
            _("We received your non-renewal notice (reference %(reference)s)"),
            _(
                "Dear %(account)s,\n\nWe received your notice that %(package)s must not renew "
                "(reference %(reference)s), at %(received)s. %(judgement)s\n\nYou can withdraw "
                "it on your account page before %(end)s; automatic renewal then resumes.\n"
            ),
        )
    if kind == "notice_withdrawn":
        return (
            _("Your non-renewal notice %(reference)s is withdrawn"),
            _(
                "Dear %(account)s,\n\nYour non-renewal notice %(reference)s for %(package)s was "
                "withdrawn at %(received)s. Automatic renewal resumes: on %(expiry)s the next "
                "cycle is deducted from your balance unless you give notice again by the "
                "deadline.\n"
            ),
        )
    raise KeyError(kind)


def _covers(covered: bool, ctx: dict[str, Any]) -> str:
    if covered:
        return _("it covers the renewal")
    return _("it does NOT cover the renewal; please top up at least %(shortfall)s") % ctx


def _provisional() -> str:
    # P5: said to a customer who has not given notice (reminders, price
    # changes): the official schedule may still move the deadline, earlier too.
    return _(
        " (provisional: the holiday schedule for that year is not published yet, and the "
        "official one may still move this deadline, possibly earlier; your account page "
        "always shows the deadline in force)"
    )


def language_of(language: str) -> str:
    """The language a message goes out in: the account's, if supported."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def render(kind: str, language: str, **ctx: Any) -> tuple[str, str]:
    """(subject, body) of the ``kind`` message in ``language``."""
    with translation.override(language_of(language)):
        subject, body = _templates(kind)
        ctx.setdefault("how", _how_to_notify())
        if "covers_bool" in ctx:
            ctx["covers"] = _covers(bool(ctx.pop("covers_bool")), ctx)
        ctx["provisional"] = _provisional() if ctx.get("provisional") else ""
        body = body % ctx
        if kind == "receipt" and ctx.get("receipt_url"):
            # Issue 19: the emailed receipt links to its PDF.
            body += _("Your receipt (PDF): %(receipt_url)s\n") % ctx
        # Issue 20: the subject is stored and sent as one line, whatever a
        # name in it holds.
        return safe_subject(subject % ctx), body
