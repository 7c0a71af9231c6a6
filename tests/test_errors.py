"""Bad input gets a clear one-line error, a non-zero exit code, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest
import torch

import tvault_git as tvault
from tests.helpers import git, import_fresh, init_repo
from tests.helpers import tvault as run_tvault
from tvault_git.registry import entries as registry
from tvault_git.registry import notes as notes
from tvault_git.spec import format as fmt


def _nothing_written(repo: Path) -> None:
    assert git(repo, "for-each-ref", "refs/tvault/", "refs/notes/").stdout == ""
    packs = [p for p in os.listdir(repo / ".git/objects/pack")] if (repo / ".git/objects/pack").exists() else []
    assert packs == []


def _assert_one_line_error(p: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exactly the documented exit code, one line on stderr, no traceback."""
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"result": float("nan")}, tvault.InvalidInput, ["result", "nan"]),
        ({"result": float("inf")}, tvault.InvalidInput, ["result", "inf"]),
        ({"result": "high"}, tvault.InvalidInput, ["result", "number"]),
        ({"result": True}, tvault.InvalidInput, ["result", "number"]),
        ({"result": torch.tensor([1.0, 2.0])}, tvault.InvalidInput, ["single number"]),
        ({"metrics": {"loss": float("nan")}}, tvault.InvalidInput, ["loss"]),
        ({"metrics": [1, 2]}, tvault.InvalidInput, ["metrics"]),
        ({"tags": {"lr": object()}}, tvault.InvalidInput, ["tags.lr", "JSON"]),
        ({"tags": {"x": float("inf")}}, tvault.InvalidInput, ["tags.x"]),
        ({"tags": {1: "a"}}, tvault.InvalidInput, ["key"]),
        ({"tags": "lr=0.1"}, tvault.InvalidInput, ["tags must be a dict"]),
        ({"name": "has space"}, tvault.InvalidInput, ["name"]),
        ({"optimizer": "adam"}, tvault.InvalidInput, ["optimizer"]),
    ],
)
def test_bad_log_arguments_are_refused_before_writing(repo, kwargs, exc, words):
    model = import_fresh("model")
    with pytest.raises(exc) as ei:
        tvault.log_all(model.Net(), **kwargs)
    for w in words:
        assert w in str(ei.value)
    _nothing_written(repo)


def test_numbers_of_other_kinds_are_accepted(repo):
    import numpy as np

    model = import_fresh("model")
    e = tvault.log_all(
        model.Net(),
        result=torch.tensor(0.25),
        metrics={"acc": np.float32(0.5), "n": np.int64(3)},
        tags={"lr": 0.01, "bs": 32, "opt": "adam", "aug": True, "sizes": [1, 2]},
    )
    meta = tvault.get(e.id)
    assert meta["result"] == 0.25 and meta["metrics"] == {"acc": 0.5, "n": 3}
    assert meta["tags"] == {"lr": 0.01, "bs": 32, "opt": "adam", "aug": True, "sizes": [1, 2]}
    assert isinstance(meta["tags"]["lr"], float) and isinstance(meta["tags"]["bs"], int)


def test_not_a_module(repo):
    with pytest.raises(tvault.InvalidInput, match="nn.Module"):
        tvault.log_all({"w": torch.zeros(2)})
    _nothing_written(repo)


def test_not_in_a_repo_and_no_commits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(tvault.NotARepository, match="git init"):
        tvault.log_all(torch.nn.Linear(2, 2))
    _assert_one_line_error(run_tvault(tmp_path, "log", check=False), 2, "not inside a git repository")
    empty = init_repo(tmp_path / "empty", with_model=False)
    with pytest.raises(tvault.NoCommits, match="no commits"):
        tvault.log_all(torch.nn.Linear(2, 2), repo=empty)
    _nothing_written(empty)


def test_unknown_and_ambiguous_refs(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    _assert_one_line_error(run_tvault(repo, "show", "deadbeef", check=False), 3, "no entry")
    _assert_one_line_error(run_tvault(repo, "show", "HEAD:7", check=False), 3, "no model 7")
    _assert_one_line_error(run_tvault(repo, "show", "nosuchbranch:0", check=False), 3, "unknown revision")
    # A second id with the same prefix (a ref + note line, as a merge could bring).
    r = pygit2.Repository(str(repo))
    twin = e.id[:6] + ("0" if e.id[6] != "0" else "1") * 34
    r.references.create(fmt.REF_PREFIX + twin, pygit2.Oid(hex=e.id))
    notes.add(r, e.commit, twin, None, None)
    with pytest.raises(tvault.AmbiguousRef) as ei:
        registry.resolve(r, e.id[:6])
    assert ei.value.ref == e.id[:6]
    assert e.id[:10] in str(ei.value) and twin[:10] in str(ei.value)
    _assert_one_line_error(run_tvault(repo, "show", e.id[:6], check=False), 3, "ambiguous", e.id[:10])
    assert registry.resolve(r, e.id[:8]).id == e.id


def _corrupt_first_weight(repo: Path, e, tensor: str, mode: str) -> None:
    r = pygit2.Repository(str(repo))
    oid = registry.weight_records(r, e.id)[tensor]["chunks"][0]
    data = bytes(r[oid].data)
    packs = sorted((repo / ".git/objects/pack").glob("pack-*.pack"))
    for p in packs:
        raw = bytearray(p.read_bytes())
        at = raw.find(data[:64])
        if at < 0:
            continue
        os.chmod(p, 0o644)
        if mode == "flip":
            raw[at + 10] ^= 0xFF
            p.write_bytes(bytes(raw))
        else:
            p.write_bytes(bytes(raw[: at + 20]))
        return
    raise AssertionError("weight bytes not found in any pack")


@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_corrupted_weights_are_refused_with_the_tensor_named(repo, mode):
    model = import_fresh("model")
    m = model.Net()
    torch.manual_seed(0)
    m.fc1.weight.data.normal_()
    e = tvault.log_all(m)
    _corrupt_first_weight(repo, e, "fc1.weight", mode)
    import tvault_git.storage.packread as pr

    pr._packs.clear()
    with pytest.raises(tvault.CorruptEntry) as ei:
        tvault.load(e.id)
    assert "fc1.weight" in str(ei.value) and ei.value.tensor == "fc1.weight"
    p = subprocess.run(
        [sys.executable, "-c", f"import tvault_git as t; t.load('{e.id}')"], cwd=repo, capture_output=True, text=True
    )
    assert p.returncode == 1 and "CorruptEntry" in p.stderr and "fc1.weight" in p.stderr  # python's own exit
    _assert_one_line_error(
        run_tvault(repo, "export", e.id, str(repo / "out.safetensors"), check=False), 4, "fc1.weight"
    )
    assert not (repo / "out.safetensors").exists()


def test_newer_format_is_refused(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    r = pygit2.Repository(str(repo))
    tree = r[e.id].tree
    manifest = registry.read_manifest(r, e.id)
    manifest["format"] = "2.0"
    tb = r.TreeBuilder(tree)
    tb.insert(fmt.MANIFEST, r.create_blob(fmt.dumps(manifest)), pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("x", "x@y")
    newer = str(r.create_commit(None, sig, sig, "future", tb.write(), []))
    r.references.create(fmt.REF_PREFIX + newer, pygit2.Oid(hex=newer))
    notes.add(r, e.commit, newer, None, None)
    with pytest.raises(tvault.UnsupportedFormat, match="upgrade tvault-git"):
        tvault.get(newer)
    _assert_one_line_error(run_tvault(repo, "show", newer[:12], check=False), 5, "2.0", "upgrade")
    assert run_tvault(repo, "show", newer[:12], check=False).returncode == tvault.UnsupportedFormat.exit_code


# --- the error model: every code exact, every error through one boundary -------------------------


def test_no_bare_base_error_is_raised_anywhere():
    """``raise TvaultError(...)`` would exit 70 (or, before, 1 = find's "no match"): raise a subclass."""
    import ast

    bare = []
    for path in sorted(Path(tvault.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                f = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(f, ast.Name) and f.id == "TvaultError":
                    bare.append(f"{path.name}:{node.lineno}")
    assert bare == []


def test_exit_codes_are_distinct_from_no_match_and_listed_in_help(tmp_path):
    from tvault_git import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.TvaultError)]
    concrete = [c for c in classes if c is not errors.TvaultError]
    assert len(concrete) == 13
    assert all(c.exit_code not in (0, errors.EXIT_NO_MATCH, errors.EXIT_INTERNAL) for c in concrete)
    assert {c.__name__: c.exit_code for c in concrete} | {"TvaultError": errors.TvaultError.exit_code} == {
        "NotARepository": 2, "NoCommits": 2, "InvalidInput": 2, "RefNotFound": 3, "AmbiguousRef": 3,
        "CorruptEntry": 4, "UnsupportedFormat": 5, "RemoteError": 6, "StorageError": 7, "LockTimeout": 8,
        "GitCommandError": 9, "InstallationError": 10, "CheckpointRefused": 11, "TvaultError": 70,
    }  # fmt: skip
    help_text = run_tvault(tmp_path, "-h").stdout  # git turns --help into man git-tvault
    table = help_text[help_text.index("Exit status:") :]
    for code, meaning in errors.EXIT_CODES:
        assert f"{code:>3}  {meaning}" in table


_BOOM = """
import tvault_git.cli.app as app
def walk(*a, **k):
    raise KeyError("a bug in walk")
app.repo_from_ctx = walk  # commands import it when they load, after this
from tvault_git.cli import main
main(["log"])
"""


def test_an_unexpected_exception_is_one_line_and_exit_70(repo):
    """A bug is not a user error: one line naming the type, exit 70; the traceback only on request."""
    p = subprocess.run([sys.executable, "-c", _BOOM], cwd=repo, capture_output=True, text=True)
    assert p.returncode == 70, p.stderr
    assert p.stderr == ("tvault: internal error: KeyError: 'a bug in walk' (set TVAULT_DEBUG=1 for the traceback)\n")
    d = subprocess.run(
        [sys.executable, "-c", _BOOM], cwd=repo, capture_output=True, text=True, env={**os.environ, "TVAULT_DEBUG": "1"}
    )
    assert d.returncode == 70 and "Traceback (most recent call last)" in d.stderr and "in walk" in d.stderr
    assert d.stderr.rstrip().endswith("(set TVAULT_DEBUG=1 for the traceback)")


def test_a_full_disk_on_export_is_a_storage_error_exit_7(repo):
    """/dev/full fails every write with ENOSPC: the export says so (exit 7) instead of "succeeding"."""
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    out = repo / "full.pt"
    out.symlink_to("/dev/full")
    p = run_tvault(repo, "export", e.id, str(out), check=False)
    _assert_one_line_error(p, 7, "could not write", "full.pt")


def test_a_lock_held_past_the_timeout_is_lock_timeout_exit_8(repo):
    """A live writer's lock (fresh, so never removed) outlasts the retry budget: LockTimeout, with the ref."""
    from tvault_git.errors import LockTimeout
    from tvault_git.gitutil import repo as gitrepo

    model = import_fresh("model")
    tvault.log_all(model.Net())
    r = pygit2.Repository(str(repo))
    lock = repo / ".git/refs/notes/tvault.lock"
    lock.write_text("")
    tip = r.references[fmt.NOTES_REF].target
    tree = r[tip].peel(pygit2.Commit).tree.id

    def step():
        return gitrepo.commit_to_ref(r, fmt.NOTES_REF, "x\n", tree, tip)

    with pytest.raises(LockTimeout) as ei:
        gitrepo.retry_locked(step, fmt.NOTES_REF, timeout=0.3, repo=r)
    assert ei.value.ref == fmt.NOTES_REF and ei.value.exit_code == 8 and "tvault.lock" in str(ei.value)
    assert lock.exists()


def test_a_real_git_error_is_not_retried_as_a_race(repo):
    """Retrying is decided from the repository (the ref moved, its lock exists), not from libgit2's
    English text: a commit of a tree that does not exist fails after a few rounds with libgit2's error."""
    from tvault_git.gitutil import repo as gitrepo

    model = import_fresh("model")
    tvault.log_all(model.Net())
    r = pygit2.Repository(str(repo))
    tip = r.references[fmt.NOTES_REF].target
    missing = pygit2.Oid(hex="1" * 40)
    calls = []

    def step():
        calls.append(1)
        return gitrepo.commit_to_ref(r, fmt.NOTES_REF, "x\n", missing, tip)

    with pytest.raises(pygit2.GitError) as ei:
        gitrepo.retry_locked(step, fmt.NOTES_REF, timeout=600, repo=r)
    assert not isinstance(ei.value, tvault.TvaultError)  # libgit2's own error, not a LockTimeout
    assert len(calls) == gitrepo._UNEXPLAINED_TRIES + 1  # a few rounds (a lock may have come and gone), no more


def test_git_command_errors_carry_args_code_and_stderr(repo):
    from tvault_git.errors import GitCommandError
    from tvault_git.gitutil.run import run_git

    with pytest.raises(GitCommandError) as ei:
        run_git(pygit2.Repository(str(repo)), ["rev-parse", "--verify", "no-such-rev"], env={"LANGUAGE": "de"})
    e = ei.value
    assert e.git_args == ("rev-parse", "--verify", "no-such-rev") and e.returncode == 128 and e.exit_code == 9
    assert "fatal: Needed a single revision" in e.stderr  # LC_ALL=C: English whatever the user's language


def test_error_fields_name_what_failed(repo, tmp_path):
    with pytest.raises(tvault.RefNotFound) as ei:
        tvault.get("HEAD:5")
    assert ei.value.ref == "HEAD:5"
    from tvault_git.share import sync

    r = pygit2.Repository(str(repo))
    missing = str(tmp_path / "nowhere.git")
    with pytest.raises(tvault.RemoteError) as re_:
        sync.fetch(r, missing)
    assert re_.value.remote == missing
