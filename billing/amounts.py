"""Amounts a person types and reads (item 9). Pure: no ORM, no clock, no I/O.

``parse_yuan`` is the one parser behind every money form. It accepts what a
person writes on a bank slip and nothing that merely looks like a number to
Python:

- ASCII digits ``0-9`` only, with at most two decimals after a ``.``
  (``100``, ``99.5``, ``99.50``, ``0.01``);
- optionally, commas separating thousands in groups of three
  (``50,000`` or ``1,234,567.89``), as amounts are copied from bank
  statements; a comma anywhere else is refused (``5,0000``, ``1,2``);
- surrounding spaces are ignored; nothing else is.

Refused, each with a message saying what to change: full-width or other
non-ASCII digits (``１００``), exponents (``1e3``), underscores (``1_000``),
signs (``+5``; ``-5`` is "greater than zero"), spaces inside, currency
signs, more than two decimals, zero, and more than twelve digits of yuan.

``yuan_in_words_zh`` / ``yuan_in_words_en`` write an amount out in words
for the second confirmation of a large top-up: Chinese financial capitals
(壹贰叁肆伍陆柒捌玖, 拾佰仟万亿, 元角分整) as on a cheque, and English.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

MAX_WHOLE_DIGITS = 12  # up to ¥999,999,999,999.99

_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?", re.ASCII)


class AmountError(ValueError):
    """The text is not an amount in yuan; ``str()`` is the message for a person."""


def parse_yuan(text: str) -> int:
    """An amount in yuan, as typed, to integer fen (``"1,234.5"`` -> ``123450``).

    Raises ``AmountError`` with a message a person understands."""
    if text is None:
        raise AmountError(_("Enter an amount."))
    value = str(text).strip()
    if not value:
        raise AmountError(_("Enter an amount."))
    if not value.isascii():
        if any(ch in "¥￥" for ch in value):
            raise AmountError(_("Enter the amount without a currency sign, for example 100.00."))
        raise AmountError(
            _(
                "Type the amount with the ASCII digits 0-9 (half-width), not full-width or "
                "other digits such as １００."
            )
        )
    if value[0] == "-":
        raise AmountError(_("The amount must be greater than zero."))
    if value[0] == "+":
        raise AmountError(_("Enter the amount without a + sign, for example 100.00."))
    if "_" in value:
        raise AmountError(_("Write the amount without underscores, for example 1000 or 1,000."))
    if re.search(r"\s", value):
        raise AmountError(_("Remove the spaces inside the amount."))
    if re.fullmatch(r"[0-9.,]*[eE][0-9.,+-]*", value) and re.search(r"[0-9]", value):
        raise AmountError(_("Write the amount out in digits, without an exponent such as 1e3."))
    if "," in value and re.fullmatch(r"[0-9.,]+", value) and not _GROUPED.fullmatch(value):
        raise AmountError(
            _("Use commas only between thousands, as in 50,000.00, or leave them out.")
        )
    if not (_PLAIN.fullmatch(value) or _GROUPED.fullmatch(value)):
        raise AmountError(_("Enter the amount in yuan as a number, for example 100 or 99.50."))
    whole, _sep, decimals = value.replace(",", "").partition(".")
    if len(decimals) > 2:
        raise AmountError(_("Give the amount in yuan with at most 2 decimals (fen)."))
    whole = whole.lstrip("0") or "0"
    if len(whole) > MAX_WHOLE_DIGITS:
        raise AmountError(_("That amount is too large."))
    fen = int(whole) * 100 + int((decimals + "00")[:2])
    if fen <= 0:
        raise AmountError(_("The amount must be greater than zero."))
    return fen


# --- amounts in words ----------------------------------------------------------------

_ZH_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_ZH_UNITS = ["", "拾", "佰", "仟"]
_ZH_GROUPS = ["", "万", "亿", "万亿"]


def _zh_integer(n: int) -> str:
    """A whole number in financial capitals: one 零 for each run of zeros
    between digits (1005 -> 壹仟零伍, 10,000,100 -> 壹仟万零壹佰, 100,001,000
    -> 壹亿零壹仟), none at the end, and none when only the 万 or 亿 place is
    zero and the next 仟 is not (105,000 -> 壹拾万伍仟; the rules for filling
    in bills allow either, this keeps the shorter)."""
    if n == 0:
        return _ZH_DIGITS[0]
    groups = []
    while n:
        n, group = divmod(n, 10_000)
        groups.append(group)
    out: list[str] = []
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            pending_zero = bool(out)
            continue
        for position in range(3, -1, -1):
            digit = group // 10**position % 10
            if digit == 0:
                pending_zero = pending_zero or bool(out)
                continue
            if pending_zero:
                out.append(_ZH_DIGITS[0])
                pending_zero = False
            out.append(_ZH_DIGITS[digit] + _ZH_UNITS[position])
        out.append(_ZH_GROUPS[index])
        pending_zero = False  # trailing zeros of a group end at its 万 / 亿
    return "".join(out)


def yuan_in_words_zh(fen: int) -> str:
    """Chinese financial capitals as written on a cheque: 5,000,000 fen ->
    伍万元整; 10,050 -> 壹佰元伍角整; 10,005 -> 壹佰元零伍分; 5 -> 伍分."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError("fen must be a whole number, not negative")
    yuan, rest = divmod(fen, 100)
    jiao, fen_digit = divmod(rest, 10)
    out = ""
    if yuan:
        out = _zh_integer(yuan) + "元"
    if jiao:
        out += _ZH_DIGITS[jiao] + "角"
    elif fen_digit and yuan:
        out += _ZH_DIGITS[0]
    if fen_digit:
        out += _ZH_DIGITS[fen_digit] + "分"
    if not out:
        return "零元整"
    return out if fen_digit else out + "整"


_EN_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_EN_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_SCALES = ["", "thousand", "million", "billion"]


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words.append(f"{_EN_ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return " ".join(words)


def _en_integer(n: int) -> str:
    if n == 0:
        return "zero"
    parts = []
    scale = 0
    while n:
        n, chunk = divmod(n, 1000)
        if chunk:
            parts.append(_en_below_1000(chunk) + (f" {_EN_SCALES[scale]}" if scale else ""))
        scale += 1
    return " ".join(reversed(parts))


def yuan_in_words_en(fen: int) -> str:
    """English words: 5,000,000 fen -> "fifty thousand yuan"; 10,050 -> "one
    hundred yuan and fifty fen"; 5 -> "five fen"."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError("fen must be a whole number, not negative")
    yuan, cents = divmod(fen, 100)
    if yuan and cents:
        return f"{_en_integer(yuan)} yuan and {_en_integer(cents)} fen"
    if cents:
        return f"{_en_integer(cents)} fen"
    return f"{_en_integer(yuan)} yuan"
