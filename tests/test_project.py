"""The project's own health: migrations match the models, system checks pass."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_missing_migrations():
    # Exits with status 1 (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_system_checks_have_no_errors():
    # Warnings (the provisional-calendar warning, P5) are allowed; errors raise.
    call_command("check", fail_level="ERROR")
