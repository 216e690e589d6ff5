"""Rule 1: the demo runs on SQLite. Every admin page (lists, searches, change
pages) and every customer page answers on the demo's own database, not only
on PostgreSQL (``tests/demo/sqlite_smoke.py``, in a subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_answers_on_the_sqlite_demo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DEBUG="true",
        ENV_FILE="",
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "demo" / "sqlite_smoke.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("ok pages=") and int(last.split("=")[1]) > 60, last
