"""``git tvault stale [NAME]``: models whose captured code the work tree no longer holds, by definition.

Real repos, real torch models logged with the code as it was, then the work tree edited the way a
researcher does: a constant bumped, a helper rewritten, a comment added, a function deleted.
"""

from __future__ import annotations

import json

import torch

import tvault_git as tv
from tests.helpers import MODEL_SRC, git, import_fresh, tvault, write


def _log(name: str, **kw):
    torch.manual_seed(0)
    return tv.log_all(import_fresh("model").Net(), name=name, **kw)


def test_stale_lists_what_changed_by_object_and_ignores_comments(repo):
    _log("mlp", result=0.5)
    _log("other", result=0.1)
    out = tvault(repo, "stale")
    assert out.stdout.strip() == "no stale models: 2 checked against the work tree"
    # a comment, a blank line and a new docstring: the same objects, not stale
    write(
        repo / "model.py",
        MODEL_SRC.replace("def act(x):", 'def act(x):\n    """The activation."""\n    # relu, scaled')
        + "\n\n# trailing comment\n",
    )
    assert "no stale models" in tvault(repo, "stale").stdout
    assert tvault(repo, "stale", "--exit-code").returncode == 0
    # now real changes: a constant, the helper the model calls, the class body
    write(
        repo / "model.py",
        MODEL_SRC.replace("WIDTH = 16", "WIDTH = 32").replace(
            "self.fc2(act(self.fc1(x)))", "self.fc2(act(self.fc1(x)).tanh())"
        ),
    )
    write(repo / "helpers.py", "def scale(v):\n    return 2 * v\n")
    p = tvault(repo, "stale", "--exit-code", check=False)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert lines[0].startswith("mlp@1 ") and lines[0].endswith(": stale")
    body = "\n".join(lines)
    assert "    constant WIDTH 16 -> 32" in body
    assert "    class Net changed (model.py)" in body
    assert "    function scale changed (helpers.py)" in body
    assert "    function act changed" not in body  # only its comment/docstring differ
    assert lines[-1] == "2 of 2 models would be built differently by the work tree's code"
    # the same comparison as diff REF (one definition): what stale names, diff shows as modified
    d = json.loads(tvault(repo, "diff", "mlp@1", "--json", "--section", "classes").stdout)
    assert [it["name"] for it in d["classes"]["items"] if it["status"] == "modified"] == ["model.Net"]
    # NAME narrows; a removed function is named
    write(repo / "helpers.py", "X = 1\n")
    out = tvault(repo, "stale", "other").stdout
    assert out.startswith("other@1 ") and "function scale removed (was in helpers.py)" in out
    rows = json.loads(tvault(repo, "stale", "other", "--json").stdout)
    assert rows[0]["state"] == "stale" and {f["status"] for f in rows[0]["findings"]} >= {"removed", "changed"}
    # a file that does not parse is said to, not reported as every definition removed
    (repo / "model.py").write_text(MODEL_SRC + "\ndef broken(:\n")
    out = tvault(repo, "stale", "mlp").stdout
    assert "class Net: model.py has a syntax error now" in out and "removed (was in model.py)" not in out
    p = tvault(repo, "stale", "nosuch", check=False)
    assert p.returncode == 3 and "no model named 'nosuch'" in p.stderr and "mlp, other" in p.stderr


def test_stale_all_versions_and_latest_only(repo):
    _log("mlp", result=0.5)
    write(repo / "model.py", MODEL_SRC.replace("WIDTH = 16", "WIDTH = 8"))
    git(repo, "commit", "-qam", "narrower")
    _log("mlp", result=0.6)
    assert "no stale models" in tvault(repo, "stale").stdout  # the latest version matches the code
    out = tvault(repo, "stale", "--all", "-v").stdout
    assert "mlp@1 " in out and "constant WIDTH 16 -> 8" in out and "mlp@2 " in out and "matches the work tree" in out
    assert out.splitlines()[-1] == "1 of 2 versions would be built differently by the work tree's code"


def test_imported_weights_have_no_code_to_be_stale(repo):
    torch.save({"w": torch.ones(3)}, repo / "w.pt")
    tvault(repo, "import", "w.pt", "--name", "ck")
    out = tvault(repo, "stale", "-v").stdout
    assert "ck@1 " in out and "no code captured (weights imported from w.pt)" in out
    assert tvault(repo, "stale", "--exit-code", check=False).returncode == 0
