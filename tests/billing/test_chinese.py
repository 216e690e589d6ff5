"""Issue 19's building blocks: the credit code check (GB 32100-2015) and
amounts in financial capitals (the People's Bank of China's examples)."""

import pytest
from django.utils import translation

from billing.chinese import (
    CREDIT_CODE_CHARACTERS,
    CREDIT_CODE_WEIGHTS,
    amount_in_capitals,
    credit_code_check_character,
    credit_code_problem,
)

# The example code widely given with GB 32100-2015.
VALID = ["91350100M000100Y43"]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_have_no_problem(code):
    assert credit_code_problem(code) is None


def test_every_single_character_mistake_is_caught():
    code = VALID[0]
    for i in range(18):
        for c in CREDIT_CODE_CHARACTERS:
            if c != code[i]:
                assert credit_code_problem(code[:i] + c + code[i + 1 :]) is not None


def test_the_weights_are_the_standards():
    # GB 32100-2015, table of weights for positions 1-17.
    assert CREDIT_CODE_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_the_check_character_is_computed_from_the_first_17():
    assert credit_code_check_character("91350100M000100Y4") == "3"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("91350100M000100Y4", "has 18 characters; this one has 17"),
        ("91350100M000100YI3", "contains I"),
        ("91350100M000100Y44", "does not match"),
    ],
)
def test_a_wrong_code_is_explained(code, words):
    assert words in credit_code_problem(code)


def test_the_explanation_is_in_chinese_for_chinese_readers():
    with translation.override("zh-hans"):
        assert "18" in credit_code_problem("9135") and "统一社会信用代码" in credit_code_problem(
            "9135"
        )


@pytest.mark.parametrize(
    ("fen", "capitals"),
    [
        # The People's Bank of China's examples (one of each allowed form).
        (140950, "壹仟肆佰零玖元伍角整"),
        (600714, "陆仟零柒元壹角肆分"),
        (168032, "壹仟陆佰捌拾元叁角贰分"),
        (10700053, "壹拾万零柒仟元伍角叁分"),
        (1640902, "壹万陆仟肆佰零玖元零贰分"),
        (32504, "叁佰贰拾伍元零肆分"),
        (10000000, "壹拾万元整"),
        # Edges.
        (0, "零元整"),
        (1, "壹分"),
        (50, "伍角整"),
        (1000, "壹拾元整"),
        (990000, "玖仟玖佰元整"),
        (10000000100, "壹亿零壹元整"),
        (100010000, "壹佰万零壹佰元整"),
        (100000000000, "壹拾亿元整"),
        (1234567890123, "壹佰贰拾叁亿肆仟伍佰陆拾柒万捌仟玖佰零壹元贰角叁分"),
    ],
)
def test_amounts_in_financial_capitals(fen, capitals):
    assert amount_in_capitals(fen) == capitals


@pytest.mark.parametrize("bad", [-1, 10**14])
def test_amounts_out_of_range_are_refused(bad):
    with pytest.raises(ValueError):
        amount_in_capitals(bad)


def test_only_whole_fen():
    with pytest.raises(TypeError):
        amount_in_capitals(12.5)
