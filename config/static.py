"""Static files in production (issue 17, section 1): whitenoise serves what
``collectstatic`` wrote, with hashed names and gzip copies beside them
(brotli ones too if the brotli package were installed; it is not).
A hashed file never changes under its name, so browsers and proxies keep it
for a year; unhashed names (none are linked by the pages) keep whitenoise's
short ``WHITENOISE_MAX_AGE``."""

from __future__ import annotations

ONE_YEAR = 365 * 24 * 3600


def cache_hashed_files_a_year(headers, path: str, url: str) -> None:
    """whitenoise's ``WHITENOISE_ADD_HEADERS_FUNCTION``: whitenoise marks a
    hashed file immutable (for ten years); the product promises a year."""
    if "immutable" in headers.get("Cache-Control", ""):
        headers["Cache-Control"] = f"max-age={ONE_YEAR}, public, immutable"
