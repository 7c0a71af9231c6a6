"""The integrations are optional: nothing imports them (or their frameworks) unless asked, and without
the framework the import fails with one line saying what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("lightning", ["lightning", "pytorch_lightning"], "lightning"),
        ("transformers", ["transformers"], "transformers"),
    ],
)
def test_missing_framework_is_one_clear_import_error(module, blocked, extra):
    block = "".join(f"sys.modules[{b!r}] = None; " for b in blocked)  # as if not installed
    p = _py(
        f"import sys; {block}\n"
        f"try:\n    import tvault_git.integrations.{module}\n"
        f"except ImportError as e:\n    print('ERR', e)\n"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ERR ") and f"pip install 'tvault-git[{extra}]'" in p.stdout


def test_the_library_never_imports_the_frameworks():
    p = _py(
        "import sys, tvault_git as t\n"
        "t.log_all, t.log_metrics, t.resume, t.load\n"
        "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers') if m in sys.modules))"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
