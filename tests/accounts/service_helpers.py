"""Helpers of the self-service page tests (issue 11, helper i11c)."""

from __future__ import annotations

import re

from billing.models import AccountMember

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
SEEN = re.compile(r'name="seen" value="([^"]+)"')


def form_fields(client, url: str) -> dict[str, str]:
    """GET the form page and return its hidden fields (the one-time token,
    and for the notice page what the customer was shown)."""
    body = client.get(url).content.decode()
    fields = {}
    if match := TOKEN.search(body):
        fields["form_token"] = match.group(1)
    if match := SEEN.search(body):
        fields["seen"] = match.group(1)
    return fields


def submit(client, url: str, data: dict | None = None, **kwargs):
    """GET ``url`` for its token, then POST ``data`` with it."""
    return client.post(url, {**form_fields(client, url), **(data or {})}, **kwargs)


def add_member(account, user, *, role=AccountMember.Role.MEMBER, now):
    return AccountMember.objects.create(account=account, user=user, role=role, added_at=now)
