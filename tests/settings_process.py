"""Settings as a fresh process sees them: environment variables are read once, at import, so a test
of what an environment configures runs the settings in a subprocess with exactly that environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_with_settings(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh process with the settings module chosen and exactly ``env`` set
    (nothing inherited but PATH, HOME and LANG)."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'supportdesk.settings'; " + code,
        ],
        cwd=ROOT,
        env={**clean, "SUPPORTDESK_VAR_DIR": str(ROOT / "var"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def setting_in_fresh_process(expression: str, env: dict[str, str]):
    """The value of ``expression`` (over ``settings``) in a fresh process with exactly ``env``, as JSON
    gives it back (non-JSON values as their text)."""
    done = python_with_settings(
        f"import json; from django.conf import settings; print(json.dumps({expression}, default=str))", env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
