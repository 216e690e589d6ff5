"""Issue 19 (P3): the fapiao rules as pure functions."""

from __future__ import annotations

import io
import zipfile

import pytest

from invoicing import policy


@pytest.mark.parametrize(
    ("status", "amount", "refunded", "expected"),
    [
        ("paid", 9_900, 0, 9_900),
        ("fulfilled", 9_900, 2_000, 7_900),
        ("fulfilled", 9_900, 9_900, 0),
        ("paid", 9_900, 12_000, 0),  # never below zero
        ("confirmed", 9_900, 0, 0),  # not paid: nothing to invoice
        ("cancelled", 9_900, 0, 0),
        ("draft", 9_900, 0, 0),
    ],
)
def test_an_order_is_invoiced_for_paid_minus_refunded(status, amount, refunded, expected):
    assert (
        policy.invoiceable_fen(status=status, amount_fen=amount, refunded_fen=refunded) == expected
    )


@pytest.mark.parametrize("number", ["12345678", "12345678901234567890"])
def test_fapiao_numbers_of_8_or_20_digits(number):
    assert policy.number_problem(number) is None


@pytest.mark.parametrize(
    ("number", "says"),
    [
        ("1234567", "this one has 7"),
        ("123456789", "this one has 9"),
        ("1234567A", "only digits"),
        ("１２３４５６７８", "only digits"),  # full-width digits are not ASCII
        ("", "only digits"),
    ],
)
def test_wrong_fapiao_numbers_are_named(number, says):
    assert says in policy.number_problem(number)


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<ofd/>")
    return buffer.getvalue()


def test_files_are_recognised_by_content_not_name():
    assert policy.file_type(b"%PDF-1.7\n...") == "pdf"
    assert policy.file_type(_zip(["OFD.xml", "Doc_0/Document.xml"])) == "ofd"
    assert policy.file_type(_zip(["word/document.xml"])) is None  # a .docx is a ZIP too
    assert policy.file_type(b"PK\x03\x04broken") is None
    assert policy.file_type(b"\x89PNG\r\n") is None


def test_file_problems():
    assert "Upload" in policy.file_problem(b"")
    assert "neither a PDF nor an OFD" in policy.file_problem(b"GIF89a")
    assert "larger than 5 MB" in policy.file_problem(b"%PDF-" + b"0" * policy.MAX_FILE_BYTES)
    assert policy.file_problem(b"%PDF-1.4 small") is None


def test_a_special_fapiao_needs_the_buyers_address_phone_bank_and_account():
    full = {
        "buyer_address": "a",
        "buyer_phone": "p",
        "buyer_bank": "b",
        "buyer_bank_account": "1",
    }
    assert policy.special_missing(kind="special", details=full) == []
    assert policy.special_missing(kind="special", details={**full, "buyer_bank": " "}) == [
        "buyer_bank"
    ]
    assert policy.special_missing(kind="general", details={}) == []
