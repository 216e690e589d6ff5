"""Issue 19: the transfer reference and the bank slip as pure functions."""

from __future__ import annotations

import pytest

from transfers import policy


@pytest.mark.parametrize("account_id", [1, 2, 31, 32, 1_000, 99_999, 123_456_789])
def test_a_reference_names_its_account(account_id):
    reference = policy.transfer_reference(account_id)
    assert reference.startswith("MT") and len(reference) <= 12
    assert not set(reference[2:]) & set("01IO")  # no look-alikes
    assert policy.account_of_reference(reference) == account_id
    assert policy.account_of_reference(f" {reference.lower()[:4]}-{reference.lower()[4:]} ") == (
        account_id
    )


def test_a_mistyped_reference_names_no_account():
    reference = policy.transfer_reference(1_000)
    for i in range(2, len(reference)):
        for ch in policy.ALPHABET:
            if ch == reference[i]:
                continue
            typo = reference[:i] + ch + reference[i + 1 :]
            assert policy.account_of_reference(typo) != 1_000
    assert policy.account_of_reference("MT0000") is None
    assert policy.account_of_reference("REF-1234") is None
    assert policy.account_of_reference("") is None


def test_slips_by_content():
    assert policy.slip_type(b"%PDF-1.4") == "pdf"
    assert policy.slip_type(b"\x89PNG\r\n\x1a\n....") == "png"
    assert policy.slip_type(b"\xff\xd8\xff\xe0") == "jpeg"
    assert policy.slip_type(b"GIF89a") is None
    assert "PNG or JPEG image or a PDF" in policy.slip_problem(b"MZ\x90\x00")
    assert "larger than 5 MB" in policy.slip_problem(b"%PDF-" + b"0" * policy.MAX_SLIP_BYTES)
    assert policy.slip_problem(b"%PDF-1.4") is None
