"""``manage.py import_statement PROVIDER FILE [--day YYYY-MM-DD]``: store a
provider's daily statement and reconcile its day (issue 18). The same file
twice changes nothing."""

import datetime as dt
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gateways import reconciliation


class Command(BaseCommand):
    help = (
        "Import a provider's daily statement (alipay: the business statement CSV as downloaded, "
        "GBK; wechatpay: the trade bill) and reconcile its day."
    )

    def add_arguments(self, parser):
        parser.add_argument("provider", metavar="PROVIDER", help="alipay or wechatpay")
        parser.add_argument("path", metavar="FILE")
        parser.add_argument(
            "--day",
            metavar="YYYY-MM-DD",
            help="The bill date, where the file does not name it (WeChat Pay's bill).",
        )

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(_("%(path)s is not a file.") % {"path": path})
        day = None
        if options["day"]:
            try:
                day = dt.date.fromisoformat(options["day"])
            except ValueError:
                raise CommandError(
                    _("%(day)s is not a date; write it as YYYY-MM-DD.") % {"day": options["day"]}
                ) from None
        if path.stat().st_size > reconciliation.MAX_STATEMENT_BYTES:
            raise CommandError(
                _("The file is larger than 20 MB; a day's statement is far smaller.")
            )
        try:
            result = reconciliation.statement_import(
                provider=options["provider"],
                data=path.read_bytes(),
                filename=path.name,
                actor=None,
                day=day,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(result.line())
