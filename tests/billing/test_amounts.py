"""Item 9: the one amount parser behind every money form, and amounts in
words for the second confirmation of a large top-up. Pure; no database."""

import pytest

from billing.amounts import AmountError, parse_yuan, yuan_in_words_en, yuan_in_words_zh


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("100", 10_000),
        ("99.5", 9_950),
        ("99.50", 9_950),
        ("0.01", 1),
        ("  100.00  ", 10_000),  # spaces around are ignored
        ("50,000", 5_000_000),  # thousands separators, as on a bank statement
        ("1,234,567.89", 123_456_789),
        ("1000000", 100_000_000),
        ("007", 700),
        ("999999999999.99", 99_999_999_999_999),
    ],
)
def test_parse_yuan_accepts(text, fen):
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("１００", "ASCII digits 0-9"),  # full-width digits
        ("１００.５", "ASCII digits 0-9"),
        ("١٠٠", "ASCII digits 0-9"),  # Arabic-Indic digits
        ("1e3", "without an exponent"),
        ("1E3", "without an exponent"),
        ("1.5e2", "without an exponent"),
        ("1_000", "without underscores"),
        ("+5", r"without a \+ sign"),
        ("-5", "greater than zero"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        ("1 000", "Remove the spaces"),
        ("1.234", "at most 2 decimals"),
        ("0.001", "at most 2 decimals"),
        ("5,0000", "commas only between thousands"),
        ("1,2", "commas only between thousands"),
        ("12,34.5", "commas only between thousands"),
        ("¥100", "without a currency sign"),
        ("￥100", "without a currency sign"),
        ("abc", "Enter the amount in yuan as a number"),
        ("NaN", "Enter the amount in yuan as a number"),
        ("inf", "Enter the amount in yuan as a number"),
        ("0x10", "Enter the amount in yuan as a number"),
        ("100.", "Enter the amount in yuan as a number"),
        (".5", "Enter the amount in yuan as a number"),
        ("1.2.3", "Enter the amount in yuan as a number"),
        ("", "Enter an amount"),
        ("   ", "Enter an amount"),
        ("1000000000000", "too large"),
    ],
)
def test_parse_yuan_refuses_with_a_message_a_person_understands(text, message):
    with pytest.raises(AmountError, match=message):
        parse_yuan(text)


@pytest.mark.parametrize(
    ("fen", "zh", "en"),
    [
        (5_000_000, "伍万元整", "fifty thousand yuan"),
        (5_000_001, "伍万元零壹分", "fifty thousand yuan and one fen"),
        (10_050, "壹佰元伍角整", "one hundred yuan and fifty fen"),
        (10_005, "壹佰元零伍分", "one hundred yuan and five fen"),
        (106, "壹元零陆分", "one yuan and six fen"),
        (5, "伍分", "five fen"),
        (50, "伍角整", "fifty fen"),
        (56, "伍角陆分", "fifty-six fen"),
        (0, "零元整", "zero yuan"),
        (1_000, "壹拾元整", "ten yuan"),
        (1_500, "壹拾伍元整", "fifteen yuan"),
        (100_500, "壹仟零伍元整", "one thousand five yuan"),
        (105_000, "壹仟零伍拾元整", "one thousand fifty yuan"),
        (
            168_032,
            "壹仟陆佰捌拾元叁角贰分",
            "one thousand six hundred eighty yuan and thirty-two fen",
        ),
        (10_500_000, "壹拾万伍仟元整", "one hundred five thousand yuan"),
        (10_700_053, "壹拾万柒仟元伍角叁分", "one hundred seven thousand yuan and fifty-three fen"),
        (100_000_100, "壹佰万零壹元整", "one million one yuan"),
        (100_001_000, "壹佰万零壹拾元整", "one million ten yuan"),
        (1_000_010_000, "壹仟万零壹佰元整", "ten million one hundred yuan"),
        (1_000_100_000, "壹仟万壹仟元整", "ten million one thousand yuan"),
        (10_000_000_000, "壹亿元整", "one hundred million yuan"),
        (10_000_100_000, "壹亿零壹仟元整", "one hundred million one thousand yuan"),
        (20_000_030_000, "贰亿零叁佰元整", "two hundred million three hundred yuan"),
        (
            99_999_999_999_999,
            "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分",
            "nine hundred ninety-nine billion nine hundred ninety-nine million nine hundred "
            "ninety-nine thousand nine hundred ninety-nine yuan and ninety-nine fen",
        ),
    ],
)
def test_amount_in_words(fen, zh, en):
    assert yuan_in_words_zh(fen) == zh
    assert yuan_in_words_en(fen) == en


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True])
def test_amount_in_words_needs_whole_fen(bad):
    with pytest.raises(ValueError):
        yuan_in_words_zh(bad)
    with pytest.raises(ValueError):
        yuan_in_words_en(bad)
