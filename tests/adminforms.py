"""Submitting the admin's money forms as a browser does (item 9): load the
page, which issues its one-time token, then post the form with that token."""

from __future__ import annotations


def page_token(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.context["form_token"]


def money_post(client, url: str, data: dict, **kwargs):
    """GET the form page for its one-time token, then POST ``data`` with it."""
    return client.post(url, {**data, "form_token": page_token(client, url)}, **kwargs)


def staff_login(client, user) -> None:
    """Log ``user`` in to ``client`` as the admin sees a real login.

    Every admin test logs staff in through this helper, so that when a role
    needs more than a password (a second factor, issue 10) the tests follow."""
    client.force_login(user)
