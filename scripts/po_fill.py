"""Fill translations into a .po catalogue from a JSON file (gettext's msgcat).

    python3 scripts/po_fill.py locale/zh_Hans/LC_MESSAGES/django.po tr.json

``tr.json`` maps each msgid to its msgstr, or, for a plural entry, to
``[msgid_plural, msgstr]`` (Chinese has one plural form). A msgid already in
the catalogue gets the new translation; then the fuzzy flags of the entries
you filled (only those) are dropped. Run makemessages afterwards to
restore the catalogue's usual wrapping, then compilemessages.
"""

import json
import subprocess
import sys

po, tj = sys.argv[1], sys.argv[2]
with open(tj, encoding="utf-8") as fh:
    tr = json.load(fh)


def q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


out = [
    'msgid ""',
    'msgstr ""',
    '"Content-Type: text/plain; charset=UTF-8\\n"',
    '"Plural-Forms: nplurals=1; plural=0;\\n"',
    "",
]
for k, v in tr.items():
    if isinstance(v, list):
        out += [f"msgid {q(k)}", f"msgid_plural {q(v[0])}", f"msgstr[0] {q(v[1])}", ""]
    else:
        out += [f"msgid {q(k)}", f"msgstr {q(v)}", ""]
patch = po + ".fill.po"
with open(patch, "w", encoding="utf-8") as fh:
    fh.write("\n".join(out))
subprocess.run(["msgcat", "--use-first", "--no-wrap", "-o", po, patch, po], check=True)
subprocess.run(["msgattrib", "--clear-fuzzy", f"--only-file={patch}", "-o", po, po], check=True)
subprocess.run(["rm", "-f", patch], check=True)
print(f"filled {len(tr)} entries")
