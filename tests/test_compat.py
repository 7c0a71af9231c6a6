"""The seed's README examples, via both ``git tvault`` and the seed-compatible ``tvault`` flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests import helpers
from tests.helpers import GIT_ENV, MODEL_SRC, git, import_fresh, write


def seed(repo, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, **GIT_ENV, NO_COLOR="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    p = subprocess.run(["tvault", *args], cwd=repo, capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def _ids(text: str) -> list[str]:
    return sorted(ln.split()[0] for ln in text.splitlines()[1:] if ln.strip())


def test_seed_readme_examples(repo):
    import tvault_git as tv  # the seed: import tvault; tvault.log_all(...)

    tvault = helpers.tvault

    model = import_fresh("model").Net()
    tv.log_all(model, tags={"lr": 0.01, "size": "0.5x"}, result=0.91)
    tv.log_all(model, tags={"lr": 0.1, "size": "1x"}, result=0.72)
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))
    git(repo, "commit", "-qam", "gelu")
    model = import_fresh("model").Net()
    tv.log_all(model, tags={"lr": 0.01, "size": "2x"}, result=0.95)
    h1 = git(repo, "rev-parse", "--short", "HEAD~1").stdout.strip()
    h2 = git(repo, "rev-parse", "--short", "HEAD").stdout.strip()

    # find by training commit
    a = seed(repo, "--find_flag", "--condition", "hash", "--hash", h1).stdout
    b = tvault(repo, "find", "--hash", h1).stdout
    assert a == b and len(_ids(a)) == 2 and f"{h1}:0" in a and f"{h1}:1" in a
    # find by result range
    a = seed(repo, "--find_flag", "--condition", "result", "--min", "0.9", "--max", "1.0").stdout
    assert a == tvault(repo, "find", "--min", "0.9", "--max", "1.0").stdout and len(_ids(a)) == 2
    # find by tag
    a = seed(repo, "--find_flag", "--condition", "tag", "--tag_type", "lr", "--tag", "0.01").stdout
    assert a == tvault(repo, "find", "--tag", "lr", "0.01").stdout and len(_ids(a)) == 2
    a = seed(repo, "--find_flag", "--condition", "tag", "--tag_type", "size", "--tag", "0.5x").stdout
    assert len(_ids(a)) == 1
    # diff
    a = seed(repo, "--diff_flag", "--sha1", h1, "--index1", "0", "--sha2", h2, "--index2", "0").stdout
    assert a == tvault(repo, "diff", f"{h1}:0", f"{h2}:0").stdout
    assert "Functions and other code: modified act" in a
    # other commands pass through
    assert len(json.loads(seed(repo, "log", "--json").stdout)) == 3


def test_seed_bad_flags_are_one_line_usage_errors(repo):
    for args in (
        ["--find_flag"],
        ["--find_flag", "--condition", "tag", "--tag", "x"],
        ["--diff_flag", "--sha1", "HEAD"],
        ["--find_flag", "--diff_flag"],
    ):
        p = seed(repo, *args, check=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr and "tvault: error:" in p.stderr
