"""The project stands on its own: the README points to the policy inside the
repository, and that policy names every rule and exception the code cites."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = [f"P{n}" for n in range(7)]
EXCEPTIONS = [f"E{n}" for n in range(1, 5)]


def test_readme_links_the_policy_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "](docs/policy.md)" in readme
    assert "](../" not in readme and "../shared" not in readme


@pytest.mark.parametrize("rule_id", RULES + EXCEPTIONS)
def test_policy_names_each_rule_and_exception(rule_id):
    policy = (ROOT / "docs" / "policy.md").read_text()
    assert re.search(rf"\b{rule_id}\b", policy), f"docs/policy.md does not mention {rule_id}"


def test_policy_has_a_section_per_rule_and_the_working_days():
    headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / "policy.md").read_text(), re.M)
    for rule_id in RULES:
        assert any(h.startswith(f"{rule_id} ") for h in headings), rule_id
    assert {"Working days", "Deadline examples", "Words used here"} <= set(headings)


def test_the_agreement_text_is_in_the_repository():
    policy = (ROOT / "docs" / "policy.md").read_text()
    assert "](refund_agreement.txt)" in policy
    agreement = (ROOT / "docs" / "refund_agreement.txt").read_text(encoding="utf-8")
    assert agreement.startswith("Refund Policy\n\nUpdate date: February 5th, 2024")
    # Clauses 1 to 6, the last one cut off as in the original.
    for n in range(1, 7):
        assert re.search(rf"^{n}\. ", agreement, re.M)
