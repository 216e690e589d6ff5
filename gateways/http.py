"""The one way this app talks to a payment provider: ``urllib`` with a
timeout on every call (connect and read), TLS verified by Python's default
context, no retry of its own (the callers retry with the same idempotency
key). A timeout or a refused connection is ``Unreachable``: the outcome is
unknown, and the caller settles it later by a query."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0


class Unreachable(Exception):
    """No answer from the provider (timeout, refused, reset): the outcome of
    the call is unknown."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def call(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Response:
    if not url.startswith(("https://", "http://")):
        raise Unreachable(f"{url.split('?')[0]}: not an http(s) address")
    # http(s) only, checked above: https for the providers, http for a test's loopback fake.
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return Response(answer.status, tuple(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as exc:  # an answer all the same (4xx, 5xx)
        return Response(exc.code, tuple(exc.headers.items()), exc.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise Unreachable(f"{method} {url.split('?')[0]}: {exc}") from exc
