"""Create or update the staff groups support, finance and admin (idempotent)."""

from django.core.management.base import BaseCommand

from billing.roles import setup_roles


class Command(BaseCommand):
    help = "Create or update the staff groups (support, finance, admin) with their permissions."

    def handle(self, *args, **options):
        missing = setup_roles()
        for role, names in missing.items():
            note = f" (not installed yet, skipped: {', '.join(names)})" if names else ""
            self.stdout.write(f"role {role}: ok{note}")
