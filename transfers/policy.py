"""Corporate bank transfers (对公转账, issue 19) as pure functions, tested in
``tests/transfers/test_policy.py``.

- Each account has one transfer reference the customer writes on the
  remittance: ``MT``, the account number in an alphabet without look-alikes
  (no 0, 1, I or O), and a check character, so a mistyped reference is
  recognised as wrong rather than matched to another account.
- A bank slip is an image (PNG, JPEG) or a PDF, recognised by its content,
  at most ``MAX_SLIP_BYTES``.
- Above the second-approval threshold, a transfer is credited only once a
  second, different finance user confirms it.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PREFIX = "MT"
MAX_SLIP_BYTES = 5 * 1024 * 1024


def _check(body: str) -> str:
    total = sum((i + 1) * ALPHABET.index(ch) for i, ch in enumerate(body))
    return ALPHABET[total % len(ALPHABET)]


def transfer_reference(account_id: int) -> str:
    """The account's reference: ``MT`` + its number in base 32 (at least 4
    characters) + a check character."""
    if account_id <= 0:
        raise ValueError("account ids are positive")
    digits = ""
    n = account_id
    while n:
        n, rest = divmod(n, len(ALPHABET))
        digits = ALPHABET[rest] + digits
    body = digits.rjust(4, ALPHABET[0])
    return PREFIX + body + _check(body)


def account_of_reference(text: str) -> int | None:
    """The account a reference names, or ``None`` when it is not one (a
    wrong check character, a look-alike, another format). Spaces, dashes and
    case do not matter."""
    code = "".join(ch for ch in (text or "").upper() if ch not in " -_")
    if not code.startswith(PREFIX) or len(code) < len(PREFIX) + 5:
        return None
    body, check = code[len(PREFIX) : -1], code[-1]
    if any(ch not in ALPHABET for ch in body + check) or _check(body) != check:
        return None
    n = 0
    for ch in body:
        n = n * len(ALPHABET) + ALPHABET.index(ch)
    return n or None


def slip_type(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return None


def slip_problem(data: bytes) -> str | None:
    """Why ``data`` is not a bank slip the customer may upload, or ``None``."""
    if len(data) > MAX_SLIP_BYTES:
        return _("The file is larger than %(mb)s MB.") % {"mb": MAX_SLIP_BYTES // (1024 * 1024)}
    if slip_type(data) is None:
        return _("Upload the bank slip as a PNG or JPEG image or a PDF.")
    return None


def needs_second_approval(*, amount_fen: int, threshold_fen: int) -> bool:
    return amount_fen > threshold_fen
