"""Chinese paperwork rules, pure (issue 19's building blocks): the unified
social credit code's check character (GB 32100-2015) a fapiao's buyer gives,
and an amount in financial capitals (人民币大写) as receipts and fapiao
write it, by the People's Bank of China rules for filling in bills
(正确填写票据和结算凭证的基本规定). No ORM, no clock."""

from __future__ import annotations

from django.utils.translation import gettext as _

# GB 32100-2015: 31 characters (no I, O, Z, S, V), each worth its index.
CREDIT_CODE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_LENGTH = 18
# The weight of positions 1-17: 3^(i-1) mod 31.
CREDIT_CODE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def credit_code_check_character(first_17: str) -> str:
    """The 18th character of a code whose first 17 are ``first_17``."""
    total = sum(
        CREDIT_CODE_CHARACTERS.index(c) * w
        for c, w in zip(first_17, CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_CHARACTERS[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a unified social credit code (统一社会信用代码),
    in words a customer understands; ``None`` when it is one. Upper case
    expected: the caller normalises (strip, upper) before asking."""
    if len(code) != CREDIT_CODE_LENGTH:
        return _(
            "A unified social credit code has 18 characters; this one has %(n)s. "
            "Copy it from the business licence."
        ) % {"n": len(code)}
    wrong = sorted({c for c in code if c not in CREDIT_CODE_CHARACTERS})
    if wrong:
        return _(
            "A unified social credit code uses only digits and capital letters other "
            "than I, O, Z, S and V; this one contains %(chars)s."
        ) % {"chars": " ".join(wrong)}
    if credit_code_check_character(code[:17]) != code[17]:
        return _(
            "This unified social credit code's last character does not match the others "
            "(GB 32100-2015 check): a character is mistyped. Copy it from the business "
            "licence."
        )
    return None


DIGITS = "零壹贰叁肆伍陆柒捌玖"
# Within a group of four digits, and the groups (个, 万, 亿).
PLACES = ("", "拾", "佰", "仟")
GROUPS = ("", "万", "亿")
MAX_CAPITALS_FEN = 10**12 * 100 - 1  # below one trillion yuan (万亿)


def _yuan_in_capitals(yuan: int) -> str:
    """The whole yuan part, without 元: one 零 for a run of zeros inside the
    number, none at the end of a group or of the number."""
    digits = str(yuan)
    out: list[str] = []
    zero = False
    group_has_digit = False
    for i, ch in enumerate(digits):
        place = len(digits) - 1 - i
        d = int(ch)
        if d == 0:
            zero = True
        else:
            if zero and out:
                out.append("零")
            zero = False
            out.append(DIGITS[d] + PLACES[place % 4])
            group_has_digit = True
        if place % 4 == 0:
            if group_has_digit and place:
                out.append(GROUPS[place // 4])
            group_has_digit = False
    return "".join(out)


def amount_in_capitals(fen: int) -> str:
    """``fen`` in financial capitals: 1,680.32 yuan is 壹仟陆佰捌拾元叁角贰分,
    16,409.02 is 壹万陆仟肆佰零玖元零贰分, 100,000.00 is 壹拾万元整, 0 is 零元整.
    整 ends an amount without 分. Refuses a negative amount or one of a
    trillion yuan or more (``ValueError``): no receipt has one."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amount_in_capitals takes whole fen (int)")
    if fen < 0 or fen > MAX_CAPITALS_FEN:
        raise ValueError(f"amount out of range: {fen} fen")
    yuan, rest = divmod(fen, 100)
    jiao, cents = divmod(rest, 10)
    if fen == 0:
        return "零元整"
    out = _yuan_in_capitals(yuan) + "元" if yuan else ""
    if jiao == 0 and cents == 0:
        return out + "整"
    if jiao:
        out += DIGITS[jiao] + "角"
    elif yuan:
        out += "零"  # 元 then 零 when 角 is zero and 分 is not
    return out + (DIGITS[cents] + "分" if cents else "整")
