"""The product's own error pages (issue 20, item 6): 400, 403 (the CSRF
failure too), 404, 500, in the site's layout and the visitor's language.

Each page is rendered from ``errors/error.html`` with a plain context, never
a request context: no context processor runs, so nothing reads the session,
the user or the database, and the 500 page renders with the database down.
No detail of the error is shown, whatever ``DEBUG`` says: the words are the
ones below, never the exception's. (With ``DEBUG`` on, Django shows its own
technical 404 and 500 pages instead, as it always does in development.)

The visitor's language is the one ``LocaleMiddleware`` chose, or, when a
page is answered before it ran (``config.middleware``), the one the
request asks for (language cookie, then ``Accept-Language``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

TEMPLATE = "errors/error.html"


def visitor_language(request: HttpRequest) -> str:
    code = getattr(request, "LANGUAGE_CODE", None)
    if code:
        return code
    try:
        return translation.get_language_from_request(request)
    except Exception:  # noqa: BLE001 - an error page never fails on the language
        return "en"


def _is_admin(request: HttpRequest) -> bool:
    try:
        return request.path.startswith(reverse("admin:index"))
    except Exception:  # noqa: BLE001
        return False


def render_error(
    request: HttpRequest, *, status: int, title: str, message: str, hint: str = ""
) -> HttpResponse:
    """The error page with ``status``; ``title``, ``message`` and ``hint``
    are translated by the caller inside ``translation.override`` (use
    ``error_response``)."""
    admin = _is_admin(request)
    context = {
        "status": status,
        "title": title,
        "message": message,
        "hint": hint,
        "home_url": reverse("admin:index") if admin else reverse("accounts:home"),
        "home_label": _("Back office home") if admin else _("MTlogin home"),
    }
    html = loader.get_template(TEMPLATE).render(context)
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    response["Content-Language"] = translation.get_language()
    return response


def error_response(request: HttpRequest, status: int, *, message: str = "") -> HttpResponse:
    """The page for ``status`` in the visitor's language. ``message``, when
    given, replaces the standard one (a lazy or plain string already chosen
    by our own code, never an exception's text)."""
    with translation.override(visitor_language(request)):
        title, standard, hint = _words(status)
        return render_error(
            request, status=status, title=title, message=str(message) or standard, hint=hint
        )


def _words(status: int) -> tuple[str, str, str]:
    if status == 400:
        return (
            _("Bad request"),
            _("This request could not be understood, so nothing was done."),
            _("Check the address or the form and try again."),
        )
    if status == 403:
        return (
            _("Not allowed"),
            _("You are not allowed to open this page or do this."),
            _("If you think you should be, log in with the right account or ask its owner."),
        )
    if status == 404:
        return (
            _("Page not found"),
            _("There is no page at this address."),
            _("Check the address, or start again from the home page."),
        )
    if status == 429:
        return (
            _("Too many attempts"),
            _("Too many requests came from you in a short time, so this one was not done."),
            _("Wait a while, then try again."),
        )
    return (
        _("Something went wrong"),
        _("An error on our side stopped this page. Nothing more was done after the error."),
        _("Try again in a few minutes. If it keeps happening, tell customer service."),
    )


# --- Django's handlers (config.urls) ----------------------------------------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form posted without its token (or with an
    expired one, or from another site). Django's reason is not shown."""
    with translation.override(visitor_language(request)):
        return render_error(
            request,
            status=403,
            title=_("This form has expired"),
            message=_(
                "The form was sent without the security token this site gives it, or with an "
                "old one, so nothing was done."
            ),
            hint=_(
                "Go back, reload the page and send the form again. Your browser must accept "
                "cookies from this site."
            ),
        )
