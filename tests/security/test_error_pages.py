"""Issue 20, item 6: the product's own error pages. 400, 403 (the CSRF
failure too), 404 and 500 are in the site's layout and the visitor's
language, show no detail of the error, and the 500 page renders with the
database down. Checked with the test client under ``DEBUG=False``, and in a
process started with the production settings (``tests/processes.py``)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client

from tests.error_urls import SECRET
from tests.processes import manage, production

LANGS = {
    "en": {
        400: "Bad request",
        403: "Not allowed",
        404: "Page not found",
        500: "Something went wrong",
        "csrf": "This form has expired",
    },
    "zh-hans": {
        400: "请求无效",
        403: "无权操作",
        404: "找不到页面",
        500: "出错了",
        "csrf": "表单已过期",
    },
}
URLS = {
    400: "/test-errors/suspicious/",
    403: "/test-errors/forbidden/",
    404: "/no/such/page/",
    500: "/test-errors/crash/",
}


@pytest.fixture(autouse=True)
def _production_pages(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.error_urls"


def _client(lang: str, **kwargs) -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE=lang, raise_request_exception=False, **kwargs)


def _is_site_page(response, status: int, title: str, lang: str) -> str:
    assert response.status_code == status
    body = response.content.decode()
    assert f'<html lang="{lang}">' in body
    assert 'class="site-header"' in body and "/static/accounts/site.css" in body
    assert f'data-status="{status}"' in body and f"<h1>{title}</h1>" in body
    assert response["Content-Language"] == lang
    # No detail: never the exception's words, never a traceback.
    assert SECRET not in body and "Traceback" not in body and "Exception" not in body
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["en", "zh-hans"])
@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_each_error_page_in_the_layout_and_the_visitors_language(lang, status):
    response = _client(lang).get(URLS[status])
    _is_site_page(response, status, LANGS[lang][status], lang)


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_the_csrf_failure_page(lang, account):
    client = _client(lang, enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    body = _is_site_page(response, 403, LANGS[lang]["csrf"], lang)
    assert "CSRF" not in body  # Django's reason is not shown


@pytest.mark.django_db
def test_a_disallowed_host_gets_the_400_page():
    response = _client("en").get("/", HTTP_HOST="evil.example")
    _is_site_page(response, 400, "Bad request", "en")


@pytest.mark.django_db
def test_the_404_page_does_not_echo_the_address():
    response = _client("en").get("/no/<b>such</b>-page-4711/")
    body = _is_site_page(response, 404, "Page not found", "en")
    assert "4711" not in body


def test_the_500_page_renders_with_no_database_at_all(client):
    """No django_db mark: pytest-django refuses every database access here,
    so the page (and every middleware on the way) must not make one. A
    session cookie is sent too: the page must not read the session."""
    c = _client("zh-hans")
    c.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32
    response = c.get(URLS[500])
    _is_site_page(response, 500, LANGS["zh-hans"][500], "zh-hans")


@pytest.mark.django_db
def test_an_admin_page_error_links_back_to_the_admin(admin_client):
    admin_client.raise_request_exception = False
    response = admin_client.get("/admin/nothing-here/")
    assert response.status_code == 404
    body = response.content.decode()
    assert 'href="/admin/"' in body and SECRET not in body


PROBE = """
import json
from django.test import Client, override_settings
seen = {}
with override_settings(ROOT_URLCONF="tests.error_urls"):
    for lang in ("en", "zh-hans"):
        c = Client(HTTP_HOST="billing.example.com", HTTP_ACCEPT_LANGUAGE=lang,
                   raise_request_exception=False)
        for name, url in (("404", "/no/such/page/"), ("500", "/test-errors/crash/"),
                          ("403", "/test-errors/forbidden/")):
            r = c.get(url, secure=True)
            seen[f"{lang} {name}"] = [r.status_code, r.content.decode()]
        r = Client(HTTP_HOST="evil.example", HTTP_ACCEPT_LANGUAGE=lang).get("/", secure=True)
        seen[f"{lang} 400"] = [r.status_code, r.content.decode()]
print(json.dumps(seen))
"""


@pytest.mark.django_db
def test_error_pages_under_production_settings_with_the_database_down():
    """A process with the production settings (DEBUG false) whose database
    cannot be reached (nothing listens on port 9): each page still renders,
    in both languages, with no detail."""
    result = manage(
        "shell",
        "-c",
        PROBE,
        **production(DATABASE_URL="postgres://postgres@127.0.0.1:9/unreachable"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    for lang, words in LANGS.items():
        for status in (400, 403, 404, 500):
            code, body = seen[f"{lang} {status}"]
            assert code == status, (lang, status)
            assert f'<html lang="{lang}">' in body and f"<h1>{words[status]}</h1>" in body
            assert SECRET not in body and "Traceback" not in body
