"""Rule 10: customers and staff are Chinese-speaking first. Every string a
person reads (pages, admin, emails, errors) is marked for translation and has
its zh-hans entry in ``locale/zh_Hans/LC_MESSAGES/django.po``; the compiled
``django.mo`` is committed, in step with the ``.po``.

- the catalogue: every entry translated, none fuzzy, the same placeholders;
- the ``.mo`` says what the ``.po`` says (read back with ``gettext``);
- a scan of the apps' code and templates fails on a new unmarked string where
  people read it (errors, admin labels, form labels, messages to staff);
- rendering: service errors, a customer email and admin pages come out in
  Chinese for a Chinese-speaking staff member or customer.
"""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest

from tests.adminforms import staff_login

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = LOCALE / "django.po"
MO = LOCALE / "django.mo"
APPS = [
    "core",
    "workdays",
    "billing",
    "notices",
    "renewals",
    "invoicing",
    "refunds",
    "ops",
    "demo",
    "config",
]
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- the catalogue --------------------------------------------------------------------


def _unquote(text: str) -> str:
    """A PO string literal's content ("..." pieces already joined) unescaped."""
    out = []
    chars = iter(text)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars)
        out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}.get(nxt, "\\" + nxt))
    return "".join(out)


def parse_po(text: str) -> list[dict]:
    """The entries of a PO file: ``msgctxt``, ``msgid``, ``msgid_plural``,
    ``msgstr`` (a list: one per plural form), ``flags`` and ``obsolete``. A
    small parser for the subset ``makemessages`` writes (no dependency)."""
    entries: list[dict] = []
    entry: dict = {}
    key = None

    def flush():
        nonlocal entry, key
        if "msgid" in entry:
            entry.setdefault("msgstr", [])
            entry.setdefault("flags", set())
            entries.append(entry)
        entry, key = {}, None

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            entry["obsolete"] = True
            continue
        if line.startswith("#,"):
            if "msgid" in entry:
                flush()
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            if "msgid" in entry and key is not None:
                flush()
            continue
        match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+"(.*)"$', line)
        if match:
            name, index, value = match.group(1), match.group(2), match.group(3)
            if name == "msgid" and "msgid" in entry:
                flush()
            if name.startswith("msgstr"):
                strs = entry.setdefault("msgstr", [])
                position = int(index) if index is not None else 0
                while len(strs) <= position:
                    strs.append("")
                key = ("msgstr", position)
                strs[position] = _unquote(value)
            else:
                key = name
                entry[name] = _unquote(value)
            continue
        if line.startswith('"') and line.endswith('"') and key is not None:
            value = _unquote(line[1:-1])
            if isinstance(key, tuple):
                entry["msgstr"][key[1]] += value
            else:
                entry[key] += value
            continue
        raise AssertionError(f"unexpected line in the .po file: {raw!r}")
    flush()
    return entries


def catalogue() -> list[dict]:
    """The translatable entries (not the header, not obsolete ones)."""
    return [
        e for e in parse_po(PO.read_text(encoding="utf-8")) if e["msgid"] and not e.get("obsolete")
    ]


PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|\{(\w*)\}|%[sdif]")


def placeholders(text: str) -> list[str]:
    """The ``%(name)s``, ``{name}`` and bare ``%s`` placeholders, sorted."""
    return sorted(m.group(0) for m in PLACEHOLDER.finditer(text.replace("%%", "")))


def test_po_parser_reads_what_makemessages_writes():
    sample = (
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        '#: a.py:1\n#, python-format\nmsgid "Hello %(name)s"\nmsgstr "你好 %(name)s"\n\n'
        '#, fuzzy\nmsgid ""\n"Two "\n"lines\\n"\nmsgstr "两行\\n"\n\n'
        'msgid "one"\nmsgid_plural "many"\nmsgstr[0] "多个"\n\n'
        '#~ msgid "gone"\n#~ msgstr "没了"\n'
    )
    entries = parse_po(sample)
    assert [e["msgid"] for e in entries] == ["", "Hello %(name)s", "Two lines\n", "one"]
    assert entries[1]["msgstr"] == ["你好 %(name)s"] and "python-format" in entries[1]["flags"]
    assert "fuzzy" in entries[2]["flags"] and entries[2]["msgstr"] == ["两行\n"]
    assert entries[3]["msgid_plural"] == "many" and entries[3]["msgstr"] == ["多个"]
    assert placeholders("%(a)s {b} %s 100%%") == ["%(a)s", "%s", "{b}"]


def test_catalogue_exists_and_is_large():
    assert PO.exists(), "run: python manage.py makemessages -l zh_Hans (see README, Translations)"
    assert len(catalogue()) > 400


def test_every_entry_is_translated_and_none_is_fuzzy():
    untranslated = [e["msgid"] for e in catalogue() if not all(s.strip() for s in e["msgstr"])]
    fuzzy = [e["msgid"] for e in catalogue() if "fuzzy" in e["flags"]]
    assert untranslated == []
    assert fuzzy == []


def test_translations_keep_their_placeholders():
    wrong = []
    for entry in catalogue():
        sources = [entry["msgid"], entry.get("msgid_plural", entry["msgid"])]
        expected = placeholders(sources[-1])
        for msgstr in entry["msgstr"]:
            if placeholders(msgstr) != expected and placeholders(msgstr) != placeholders(
                sources[0]
            ):
                wrong.append((entry["msgid"], msgstr))
    assert wrong == []


def test_translations_are_chinese():
    """Not the English copied over: each entry with words is written in Chinese
    (rule ids such as P5 and placeholders aside)."""
    english = [
        e["msgid"]
        for e in catalogue()
        if re.search(r"[A-Za-z]{4,}", PLACEHOLDER.sub("", e["msgid"]))
        and not any(CJK.search(s) for s in e["msgstr"])
    ]
    assert english == []


def test_compiled_catalogue_matches_the_po():
    """The committed .mo is what compilemessages makes of the committed .po
    (neither CI nor the demo needs gettext installed)."""
    assert MO.exists(), "run: python manage.py compilemessages"
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for entry in catalogue():
        context = entry.get("msgctxt")
        if "msgid_plural" in entry:
            got = [
                compiled.npgettext(context, entry["msgid"], entry["msgid_plural"], n)
                if context
                else compiled.ngettext(entry["msgid"], entry["msgid_plural"], n)
                for n in (1, 2)
            ]
            want = [entry["msgstr"][0], entry["msgstr"][min(1, len(entry["msgstr"]) - 1)]]
        else:
            got = (
                compiled.pgettext(context, entry["msgid"])
                if context
                else compiled.gettext(entry["msgid"])
            )
            want = entry["msgstr"][0]
        if got != want:
            stale.append(entry["msgid"])
    assert stale == [], "recompile: python manage.py compilemessages"
    assert len(compiled._catalog) >= len(catalogue())  # type: ignore[attr-defined]


# --- the scan: new strings a person reads are marked ------------------------------------

TRANSLATE = {
    "_",
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
}
# Keyword arguments that people read, wherever they are passed.
READ_KEYWORDS = {
    "label",
    "help_text",
    "verbose_name",
    "verbose_name_plural",
    "description",
    "title",
    "submit_label",
    "intro",
    "empty_label",
}
# Exceptions whose first argument a person reads (the admin and the account pages
# show ValidationErrors; the others are ValidationErrors, or become one).
ERRORS = {"ValidationError", "ActorRefused", "AmountError", "NoticeRefused"}
# Class attributes people read (model Meta, inlines, list filters).
READ_ATTRIBUTES = {"verbose_name", "verbose_name_plural", "title", "short_description"}
# Choices whose labels are deliberately not translated: languages are named in
# themselves, as a language menu shows them.
UNTRANSLATED_CHOICES = {"Language"}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _has_words(text: str) -> bool:
    return bool(re.search(r"[A-Za-z]{2,}", text))


def marked(node: ast.expr | None) -> bool:
    """Whether a value a person reads is translatable: a call to a gettext
    function (possibly formatted with ``%`` or ``format_lazy``), or a variable or
    computed value (translated where it was made); never a bare string or an
    f-string with words in it."""
    if node is None:
        return True
    if isinstance(node, ast.Constant):
        return not (isinstance(node.value, str) and _has_words(node.value))
    if isinstance(node, ast.JoinedStr):
        return not any(
            isinstance(v, ast.Constant) and _has_words(str(v.value)) for v in node.values
        )
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if name in TRANSLATE:
            return True
        if name == "format_lazy":
            return bool(node.args) and marked(node.args[0])
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Constant):
            return marked(node.func.value)  # "...".format(...), "...".join(...)
        return True
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Mod):
            return marked(node.left)
        return marked(node.left) and marked(node.right)
    if isinstance(node, ast.IfExp):
        return marked(node.body) and marked(node.orelse)
    if isinstance(node, ast.Dict):
        return all(marked(v) for v in node.values)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(marked(v) for v in node.elts)
    return True


def _is_choices(cls: ast.ClassDef) -> bool:
    return any(_name(b) in {"TextChoices", "IntegerChoices", "Choices"} for b in cls.bases)


def unmarked_in(source: str, filename: str = "<source>") -> list[str]:
    """``file:line what`` for each unmarked string a person reads."""
    tree = ast.parse(source, filename=filename)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno} {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in ERRORS:
                args = node.args[:1] + [k.value for k in node.keywords if k.arg == "message"]
                for arg in args:
                    if not marked(arg):
                        report(node, f"{name}(...) message")
            if name == "message_user":
                args = node.args[1:2] + [k.value for k in node.keywords if k.arg == "message"]
                for arg in args:
                    if not marked(arg):
                        report(node, "message_user(...) message")
            first = node.args[0] if node.args else None
            if name.endswith("Field") and isinstance(first, ast.Constant) and not marked(first):
                report(node, f"{name}(...) verbose name")
            for keyword in node.keywords:
                if keyword.arg in READ_KEYWORDS and not marked(keyword.value):
                    report(node, f"{keyword.arg}=")
                if keyword.arg == "error_messages" and not marked(keyword.value):
                    report(node, "error_messages=")
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if not isinstance(stmt, ast.Assign):
                    continue
                targets = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                if any(t in READ_ATTRIBUTES for t in targets) and not marked(stmt.value):
                    report(stmt, f"{node.name}.{targets[0]}")
                if "fieldsets" in targets and isinstance(stmt.value, ast.List | ast.Tuple):
                    for fieldset in stmt.value.elts:
                        if isinstance(fieldset, ast.Tuple) and not marked(fieldset.elts[0]):
                            report(fieldset, "fieldset title")
                if (
                    _is_choices(node)
                    and node.name not in UNTRANSLATED_CHOICES
                    and isinstance(stmt.value, ast.Tuple)
                    and len(stmt.value.elts) == 2
                    and not marked(stmt.value.elts[1])
                ):
                    report(stmt, f"{node.name}.{targets[0]} choice label")
    return found


def _app_sources() -> list[Path]:
    return [
        path
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_strings_people_read_are_marked_for_translation():
    found = []
    for path in _app_sources():
        found += unmarked_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == [], "mark these with gettext / gettext_lazy (rule 10)"


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ('raise ValidationError("Order is paid.")\n', True),
        ('raise ValidationError(f"Order #{pk} is paid.")\n', True),
        ('raise ValidationError({"amount": "Too large."})\n', True),
        ('raise ValidationError(_("Order #%(pk)s is paid.") % {"pk": pk})\n', False),
        ('raise ValidationError({"amount": _("Too large.")})\n', False),
        ("raise ValidationError(message)\n", False),
        ('self.message_user(request, "Done.", messages.SUCCESS)\n', True),
        ('self.message_user(request, _("Done."), messages.SUCCESS)\n', False),
        ('@admin.display(description="Amount")\ndef amount(obj): pass\n', True),
        ('@admin.display(description=gettext_lazy("Amount"))\ndef amount(obj): pass\n', False),
        ('x = forms.CharField(label="Reference", help_text=_("As on the slip."))\n', True),
        ('x = forms.CharField(label=_("Reference"), help_text="As on the slip.")\n', True),
        ('x = forms.CharField(error_messages={"required": "Enter it."})\n', True),
        ('x = models.CharField("name", max_length=3)\n', True),
        ('x = models.CharField(_("name"), max_length=3)\n', False),
        ('class M:\n    class Meta:\n        verbose_name_plural = "ledger entries"\n', True),
        ('class F(admin.SimpleListFilter):\n    title = "subscription"\n', True),
        ('class K(models.TextChoices):\n    A = "a", "Annual"\n', True),
        ('class K(models.TextChoices):\n    A = "a", _("Annual")\n', False),
        ('class A:\n    fieldsets = [("Money", {"fields": ["balance"]})]\n', True),
        ('class A:\n    fieldsets = [(None, {"fields": ["name"]})]\n', False),
        ('x = f(title=_("%(a)s: %(b)s") % {"a": 1, "b": 2}, intro=" " + _("More."))\n', False),
    ],
)
def test_the_scan_sees_unmarked_strings(source, bad):
    assert bool(unmarked_in(source)) is bad


TEMPLATES = ROOT / "templates"
_TEMPLATE_CODE = re.compile(
    r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}|{%.*?%}|{{.*?}}|{#.*?#}", re.S
)
_ATTRIBUTE = re.compile(r'\b(?:value|title|placeholder|alt|aria-label)="([^"]*)"')


def untranslated_template_text(html: str) -> list[str]:
    """Words in a template outside ``{% translate %}``/``{% blocktranslate %}``:
    text between tags, and the attributes people read (a button's value)."""
    html = re.sub(
        r"<style.*?</style>|<script.*?</script>|{%\s*block bodyclass\s*%}.*?{%\s*endblock\s*%}"
        r'|&\w+;|<input[^>]*type="hidden"[^>]*>',  # entities; hidden inputs show nothing
        " ",
        html,
        flags=re.S,
    )
    found = [v for v in _ATTRIBUTE.findall(html) if _has_words(_TEMPLATE_CODE.sub("", v))]
    text = re.sub(r"<[^>]*>", " ", _TEMPLATE_CODE.sub(" ", html))
    found += [w for w in re.findall(r"[A-Za-z][A-Za-z' ]*[A-Za-z]", text) if _has_words(w)]
    return found


def test_templates_translate_their_text():
    found = {
        str(path.relative_to(ROOT)): untranslated_template_text(path.read_text(encoding="utf-8"))
        for path in sorted(TEMPLATES.rglob("*.html"))
    }
    assert {name: words for name, words in found.items() if words} == {}


@pytest.mark.parametrize(
    ("html", "bad"),
    [
        ("<p>Preview first.</p>", True),
        ('<input type="submit" value="Preview">', True),
        ("<p>{% translate 'Preview first.' %}</p>", False),
        ('<input type="submit" value="{% translate \'Preview\' %}">', False),
        ("<h2>{% blocktranslate %}{{ n }} orders{% endblocktranslate %}</h2>", False),
        ("<td>{{ order.pk }}</td><style>p { color: red; }</style>", False),
    ],
)
def test_the_template_scan_sees_untranslated_text(html, bad):
    assert bool(untranslated_template_text(html)) is bad


# --- rendering: what people see in Chinese ------------------------------------------------

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


def test_amount_errors_come_out_in_chinese():
    from django.utils import translation

    from billing.amounts import AmountError, parse_yuan

    with translation.override("zh-hans"), pytest.raises(AmountError) as refused:
        parse_yuan("１００")
    assert "请用半角数字 0-9 输入金额" in str(refused.value)
    with translation.override("en"), pytest.raises(AmountError) as refused:
        parse_yuan("１００")
    assert "ASCII digits 0-9" in str(refused.value)


@pytest.mark.django_db
def test_service_errors_come_out_in_chinese(account, finance_user, catalog, t0):
    from django.core.exceptions import ValidationError
    from django.utils import translation

    from billing import services

    from . import factories

    with translation.override("zh-hans"):
        with pytest.raises(ValidationError) as refused:
            services.balance_top_up(
                account=account, amount_fen=100, channel="offline", actor=finance_user
            )
        assert refused.value.message_dict == {"reference": ["线下充值需要填写银行流水号。"]}

        order = factories.buy(account_with_money(account, t0), catalog["pro-monthly"], now=t0)
        with pytest.raises(ValidationError) as refused:
            services.order_cancel(order=order, actor=finance_user)
        assert refused.value.messages == [
            f"订单 #{order.pk} 已付款：已确认的购买不能取消或退款（P1，退款协议第 1 条）。"
        ]
        with pytest.raises(ValidationError) as refused:
            services.balance_top_up(
                account=account, amount_fen=100, channel="offline", reference="X", actor=None
            )
        assert "只有已登录的用户才能充值余额" in refused.value.messages[0]


def account_with_money(account, t0):
    from . import factories

    factories.provider_top_up(account, 100_000, now=t0)
    account.refresh_from_db()
    return account


@pytest.mark.django_db
def test_past_due_email_is_in_the_account_language(catalog, agreement):
    """Customer emails come from the catalogue in the account's language, whatever
    language the process runs in (a Celery worker, a staff member's request)."""
    import datetime as dt

    from django.utils import translation

    from billing.models import Account, Subscription
    from billing.policy import SHANGHAI
    from renewals.models import Notification
    from renewals.notifications import notification_for

    from . import factories

    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    bodies = {}
    for language, active in (("zh-hans", "en"), ("en", "zh-hans")):
        account = factories.make_account(f"Short-{language}", now=t_buy, balance_fen=9_900)
        Account.objects.filter(pk=account.pk).update(language=language)
        sub = factories.buy(account, catalog["pro-monthly"], now=t_buy).subscription
        sub = Subscription.objects.select_related("account", "package").get(pk=sub.pk)
        with translation.override(active):
            note = notification_for(
                Notification.Kind.PAST_DUE,
                subscription=sub,
                period_end=sub.current_period_end,
                at=sub.current_period_end,
                amount_fen=9_900,
                grace_end=sub.current_period_end + dt.timedelta(days=3),
            )
        bodies[language] = (note.subject, note.body)
    subject, body = bodies["zh-hans"]
    assert subject == "您的专业版(月付)未能续费"
    assert body.startswith(
        "Short-zh-hans，您好：\n\n账户余额（¥0.00）不足以支付专业版(月付)的续费金额"
    )
    assert "请在2025-04-06 10:00:00（北京时间）前至少充值¥99.00" in body
    assert not re.search(r"[A-Za-z]{4,}", body.replace("Short-zh-hans", ""))
    subject, body = bodies["en"]
    assert subject == "Your Pro monthly could not be renewed"
    assert "Top up at least ¥99.00 by 2025-04-06 10:00:00 (Beijing time)" in body
    assert not CJK.search(body)


@pytest.mark.django_db
def test_admin_index_is_chinese_for_a_chinese_browser(client, finance_user):
    staff_login(client, finance_user)
    html = client.get("/admin/", **ZH).content.decode()
    assert '<html lang="zh-hans"' in html
    assert "MTlogin 计费后台" in html and "后台首页" in html
    assert ">计费<" in html and ">账户<" in html and ">订单<" in html
    assert "MTlogin billing back office" not in html
    english = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "MTlogin billing back office" in english and not CJK.search(
        english.replace("简体中文", "")
    )


@pytest.mark.django_db
def test_top_up_form_and_message_are_chinese(client, finance_user, account):
    from django.urls import reverse

    from .adminforms import money_post

    staff_login(client, finance_user)
    url = reverse("admin:billing_account_top_up", args=[account.pk])
    html = client.get(url, **ZH).content.decode()
    for text in (
        "充值余额",
        "金额（元）",
        "收款方式",
        "线下（银行转账）",
        "银行或支付机构的流水号",
    ):
        assert text in html, text
    refused = money_post(client, url, {"amount": "１００", "channel": "offline"}, **ZH)
    assert "请用半角数字 0-9 输入金额" in refused.content.decode()
    done = money_post(
        client,
        url,
        {"amount": "100", "channel": "offline", "reference": "ICBC-ZH-1"},
        follow=True,
        **ZH,
    )
    assert "已为 Acme 充值 ¥100.00。当前余额 ¥100.00。" in done.content.decode()


@pytest.mark.django_db
def test_notice_record_page_is_chinese(client, support_user, account, catalog, t0):
    from . import factories

    order = factories.buy(account_with_money(account, t0), catalog["pro-monthly"], now=t0)
    staff_login(client, support_user)
    url = f"/admin/notices/nonrenewalnotice/record/?subscription={order.subscription.pk}"
    html = client.get(url, **ZH).content.decode()
    for text in (
        "登记不续费通知",
        "收到时间（北京时间）",
        "代客户登记",
        'value="预览"',
        "电子邮件",
    ):
        assert text in html, text
    assert "Record a notice that reached" not in html


def test_ledger_memos_the_services_write_read_in_chinese():
    """The memos the services store in the ledger (English, append-only) are
    shown in the page's language; a memo staff typed is shown as typed."""
    from types import SimpleNamespace

    from django.utils import translation

    from billing.admin.base import ledger_memo

    def entry(memo, order_id=None, channel="balance"):
        return SimpleNamespace(memo=memo, order_id=order_id, channel=channel)

    with translation.override("zh-hans"):
        assert ledger_memo(entry("Payment for order #7", 7, "offline")) == "订单 #7 的付款"
        assert ledger_memo(entry("Order #7 pro-monthly", 7)) == "订单 #7 pro-monthly"
        assert ledger_memo(entry("Renewal order #9", 9)) == "续费订单 #9"
        assert ledger_memo(entry("testpay payment", None, "online")) == "testpay 付款"
        assert ledger_memo(entry("Payment for order #8", 7)) == "Payment for order #8"
        assert ledger_memo(entry("cash at the office", None, "other")) == "cash at the office"
    with translation.override("en"):
        assert ledger_memo(entry("Payment for order #7", 7, "offline")) == "Payment for order #7"
