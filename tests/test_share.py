"""Sharing over real remotes: bare repos by path and file://, git daemon, smart HTTP (git http-backend).

Three clones act as teammates logging entries on the same training commit and
pushing/pulling in any order; every clone must end with the union, identical
indexes and a clean ``git fsck``.
"""

from __future__ import annotations

import http.server
import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path

import pygit2
import pytest

import tvault_git as tvault
from tests.helpers import free_port, git, git_tool, import_fresh, init_repo
from tests.helpers import tvault as run_tvault
from tvault_git.errors import RemoteError
from tvault_git.registry import entries as registry
from tvault_git.registry import names as models
from tvault_git.registry import notes as notes
from tvault_git.share import sync as remotes

# --- helpers -------------------------------------------------------------------


def log_in(clone: Path, result: float, name: str | None = "mnist") -> str:
    """log_all in ``clone`` as its owner would (its model.py on sys.path)."""
    sys.path.insert(0, str(clone))
    try:
        sys.modules.pop("helpers", None)
        Net = import_fresh("model").Net
        return tvault.log_all(Net(), result=result, name=name, repo=str(clone)).id
    finally:
        sys.path.remove(str(clone))
        sys.modules.pop("model", None)
        sys.modules.pop("helpers", None)


def R(p: Path) -> pygit2.Repository:
    return pygit2.Repository(str(p))


def index_of(p: Path) -> dict[str, list[str]]:
    """commit -> entry ids in model-index order: what COMMIT:N means in this clone."""
    return {c: [n.entry for n in lines] for c, lines in notes.walk(R(p))}


def same_entries(*views: dict[str, list[str]]) -> bool:
    """Every clone lists the same entries per commit. Their order may differ where two clones logged
    concurrently on one commit: a pull never moves an entry that is already here (issue 14, D2)."""
    return len({tuple(sorted((c, tuple(sorted(ids))) for c, ids in v.items())) for v in views}) == 1


def all_ids(p: Path) -> set[str]:
    return {e for ids in index_of(p).values() for e in ids}


def fsck(p: Path) -> None:
    out = git(p, "fsck", "--strict", "--no-dangling")
    assert "error" not in out.stderr.lower() and "missing" not in out.stderr.lower(), out.stderr


def make_bare(base: Path, name: str = "shared.git") -> Path:
    b = base / name
    git(base, "init", "-q", "--bare", "-b", "main", str(b))
    return b


def make_team(tmp_path: Path, url: str, bare: Path, n: int = 3) -> list[Path]:
    """A project pushed to ``bare``, cloned by ``n`` teammates through ``url``."""
    src = init_repo(tmp_path / "seed")
    git(src, "push", "-q", str(bare), "main")
    team = []
    for i in range(n):
        c = tmp_path / f"mate{i}"
        git(tmp_path, "clone", "-q", url, str(c))
        git(c, "config", "user.name", f"Mate {i}")
        git(c, "config", "user.email", f"mate{i}@example.com")
        team.append(c)
    return team


class _GitHTTP(http.server.BaseHTTPRequestHandler):
    """Smart HTTP: hands each request to ``git http-backend`` the way a CGI server does."""

    root = ""

    def log_message(self, *a):  # keep test output quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        env = {
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": "tester",
            "PATH": os.environ["PATH"],
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        body = self._body() if self.command == "POST" else b""
        env["CONTENT_LENGTH"] = str(len(body))
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = p.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _cgi


@pytest.fixture
def http_server(tmp_path: Path):
    """A smart-HTTP git server on 127.0.0.1 for repos under tmp_path/www; yields (base dir, url prefix)."""
    if not git_tool("http-backend"):
        pytest.skip("git http-backend is not installed")
    base = tmp_path / "www"
    base.mkdir()
    handler = type("H", (_GitHTTP,), {"root": str(base)})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield base, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


# --- teammates -----------------------------------------------------------------


def _teamwork(team: list[Path]) -> None:
    """Everyone logs on the same training commit, then push/pull in a scrambled order."""
    a, b, c = team
    ids = {log_in(a, 0.5), log_in(b, 0.6), log_in(b, 0.65, name="other"), log_in(c, 0.7)}
    remotes.push(R(b))  # b first
    fsck(b)
    models.set_alias(R(a), "mnist", "mnist@1", "production")  # a's alias, before seeing b's entries
    remotes.push(R(a))  # non-fast-forward for notes: merged, not discarded
    fsck(a)
    ids.add(log_in(c, 0.8))
    remotes.pull(R(c))
    models.set_alias(R(c), "mnist", "mnist@latest", "staging")
    remotes.push(R(c))
    before = [index_of(m) for m in team]
    for m in (b, a):
        remotes.pull(R(m))
        fsck(m)
    views = [index_of(m) for m in team]
    assert all(all_ids(m) == ids for m in team)
    assert same_entries(*views)
    for old, new in zip(before, views):  # what a clone listed keeps its index: merges only append
        assert all(new[c][: len(ids_)] == ids_ for c, ids_ in old.items())
    assert len(views[0]) == 1 and len(next(iter(views[0].values()))) == 5  # one training commit, five models
    vers = [[v.entry.id for v in models.versions(R(m), "mnist")] for m in team]
    assert vers[0] == vers[1] == vers[2] and len(vers[0]) == 4
    al = [models.aliases(R(m), "mnist") for m in team]
    assert al[0] == al[1] == al[2] and set(al[0]) == {"production", "staging"}
    # the shared registry loads anywhere
    sd = tvault.load("mnist@staging", repo=str(a))
    assert set(sd) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_three_teammates_bare_path(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    team = make_team(tmp_path, str(bare), bare)
    _teamwork(team)
    fsck(bare)
    # a second round trip moves nothing and changes nothing
    before = index_of(team[0])
    t = remotes.pull(R(team[0]))
    assert t.new_entries == [] and index_of(team[0]) == before


def test_three_teammates_file_url(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    _teamwork(make_team(tmp_path, f"file://{bare}", bare))


def test_three_teammates_git_daemon(tmp_path: Path, daemon) -> None:
    base, url = daemon
    bare = make_bare(base)
    _teamwork(make_team(tmp_path, f"{url}/shared.git", bare))


def test_three_teammates_smart_http(tmp_path: Path, http_server) -> None:
    base, url = http_server
    bare = make_bare(base)
    git(bare, "config", "http.receivepack", "true")
    _teamwork(make_team(tmp_path, f"{url}/shared.git", bare))


def test_cli_push_pull_and_concurrent_unpushed_entries_survive(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    ea = log_in(a, 0.1)
    assert "pushed to origin" in run_tvault(a, "push", "-q").stdout
    eb = log_in(b, 0.2)  # b's entry, not pushed yet, on the same commit and seq as a's
    out = run_tvault(b, "pull").stdout
    assert "1 new entry" in out and "index merged" in out
    assert all_ids(b) == {ea, eb}
    run_tvault(b, "push")
    run_tvault(a, "pull", "origin")
    assert same_entries(index_of(a), index_of(b))
    assert next(iter(index_of(a).values()))[0] == ea and next(iter(index_of(b).values()))[0] == eb
    assert run_tvault(a, "log", "--json").stdout.count('"id"') == 2
    fsck(a)
    fsck(b)


def test_fetch_without_merge_then_pull(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    e = log_in(a, 0.3)
    remotes.push(R(a))
    t = remotes.fetch(R(b), "origin")
    assert t.new_entries == [e]
    assert all_ids(b) == set()  # the index is merged by pull, not fetch
    assert R(b).references.get("refs/tvault-remote/origin/notes") is not None
    remotes.pull(R(b))
    assert all_ids(b) == {e}


# --- one entry -----------------------------------------------------------------


def test_fetch_one_entry_transfers_only_that_entry(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    ids = [log_in(a, r) for r in (0.1, 0.9, 0.5)]
    models.set_alias(R(a), "mnist", "mnist@3", "production")
    remotes.push(R(a))
    out = run_tvault(b, "fetch", "origin", "mnist@production").stdout
    assert ids[2][:10] in out
    rb = R(b)
    assert rb.get(ids[2]) is not None
    for other in ids[:2]:
        assert rb.get(other) is None  # neither the other entries' commits ...
        blobs = registry.weight_records(R(a), other)
        assert all(rb.get(c) is None for rec in blobs.values() for c in rec["chunks"])  # ... nor their weights
    # the remote's index was read from its notes tip in a scratch repository: no notes history here, no leftovers
    assert rb.references.get("refs/tvault-remote/origin/notes") is None
    assert not list((b / ".git" / "tvault").glob("remote-index-*")) and not (b / ".git" / "shallow").exists()
    # indexed here with the remote's own note line (same seq, so indexes agree once the rest arrives)
    line = lambda p: next(n for _, ls in notes.walk(R(p)) for n in ls if n.entry == ids[2])  # noqa: E731
    assert line(b) == line(a)
    sa, sb = tvault.load(ids[2], repo=str(a)), tvault.load("mnist@production", repo=str(b))
    assert all((sa[k] == sb[k]).all() for k in sa)
    fsck(b)
    # by id prefix and by COMMIT:N, as the remote reads them
    e = remotes.fetch_one(rb, "origin", ids[0][:8])
    assert e.id == ids[0]
    commit = registry.resolve(R(a), ids[1]).commit
    assert remotes.fetch_one(rb, "origin", f"{commit}:1").id == ids[1]
    assert same_entries(index_of(b), index_of(a))  # fetched out of order: never re-numbered here
    fsck(b)


# --- errors --------------------------------------------------------------------


def test_remote_errors_are_one_line_exit_6(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    (a,) = make_team(tmp_path, str(bare), bare, n=1)
    log_in(a, 0.4)
    not_repo = tmp_path / "plain-dir"
    not_repo.mkdir()
    port = free_port()  # nothing listens there
    cases = [
        (("push", str(not_repo)), "not a git repository"),
        (("pull", str(tmp_path / "nowhere")), "not a git repository"),
        (("fetch", f"http://127.0.0.1:{port}/x.git"), "cannot reach"),
        (("fetch", f"git://127.0.0.1:{port}/x.git", "mnist@1"), "cannot reach"),
    ]
    empty = make_bare(tmp_path, "empty.git")
    assert "nothing to push" in run_tvault(tmp_path / "seed", "push", str(empty)).stdout  # no entries: not an error
    for args, words in cases:
        p = run_tvault(a, *args, check=False)
        assert p.returncode == 6, (args, p.stderr)
        assert words in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'permission denied: read-only registry' >&2\nexit 1\n")
    hook.chmod(0o755)
    p = run_tvault(a, "push", check=False)
    assert p.returncode == 6 and "rejected the push" in p.stderr and "Traceback" not in p.stderr, p.stderr
    with pytest.raises(RemoteError):
        remotes.push(R(a), "origin")
    fsck(a)


# --- plain git -----------------------------------------------------------------


def test_plain_git_push_and_documented_fetch(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    (a,) = make_team(tmp_path, str(bare), bare, n=1)
    e = log_in(a, 0.42)
    models.set_alias(R(a), "mnist", "mnist@1", "production")
    git(a, "push", "-q", "origin", "refs/tvault/*", "refs/notes/tvault")
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    git(fresh, "fetch", "-q", "origin", "refs/tvault/*:refs/tvault/*", "refs/notes/tvault:refs/notes/tvault")
    fsck(fresh)
    assert e[:10] in run_tvault(fresh, "log").stdout
    assert e[:10] in run_tvault(fresh, "find", "--name", "mnist").stdout
    assert run_tvault(fresh, "show", "mnist@production").returncode == 0
    sd = tvault.load("mnist@1", repo=str(fresh))
    assert "fc1.weight" in sd
    # a diverged clone: the documented non-forced fetch refuses the notes (nothing lost), pull merges
    e2 = log_in(fresh, 0.5)
    assert run_tvault(fresh, "diff", e, e2, "--no-weights").returncode == 0
    e3 = log_in(a, 0.6)
    git(a, "push", "-q", "origin", "refs/tvault/*", "refs/notes/tvault")
    p = git(fresh, "fetch", "origin", "refs/tvault/*:refs/tvault/*", "refs/notes/tvault:refs/notes/tvault", check=False)
    assert p.returncode != 0 and all_ids(fresh) == {e, e2}
    remotes.pull(R(fresh))
    assert all_ids(fresh) == {e, e2, e3}
    fsck(fresh)


# --- Python API ----------------------------------------------------------------


def test_download_load_into_update_publish(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    sys.path.insert(0, str(a))
    try:
        sys.modules.pop("helpers", None)
        Net = import_fresh("model").Net
        m1 = Net()
        e1 = tvault.update("mnist", m1, result=0.8, repo=str(a))
        e2 = tvault.update("mnist", Net(), result=0.7, repo=str(a))
        assert [v.entry.id for v in models.versions(R(a), "mnist")] == [e1.id, e2.id]
        models.set_alias(R(a), "mnist", "mnist@1", "production")
        assert tvault.publish("origin", repo=str(a)).pushed
        sd = tvault.download("mnist@production", remote="origin", repo=str(b))
        assert all((sd[k] == v).all() for k, v in m1.state_dict().items())
        assert R(b).get(e2.id) is None  # only the requested version travelled
        m = Net()
        tvault.load_into(m, "mnist@best", repo=str(b), remote="origin")
        assert all((m.state_dict()[k] == v).all() for k, v in m1.state_dict().items())
        # offline: what is already here still loads
        git(b, "remote", "set-url", "origin", str(tmp_path / "gone"))
        assert set(tvault.download("mnist@production", remote="origin", repo=str(b))) == set(sd)
        with pytest.raises(RemoteError):
            tvault.download("mnist@2", remote="origin", repo=str(b))
    finally:
        sys.path.remove(str(a))
        sys.modules.pop("model", None)
        sys.modules.pop("helpers", None)


def _pack_objects(repo: Path) -> set[str]:
    out = set()
    gd = repo / ".git" if (repo / ".git").exists() else repo
    for idx in (gd / "objects" / "pack").glob("*.idx"):
        p = subprocess.run(["git", "show-index"], stdin=open(idx, "rb"), capture_output=True, text=True, cwd=repo)
        out |= {line.split()[1] for line in p.stdout.splitlines()}
    return out


def test_new_version_transfers_only_changed_tensors(tmp_path: Path) -> None:
    """Pull and push of a version that changed one layer send that layer's tensors, not the unchanged ones."""
    import torch

    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    for r in (a, b, bare):
        git(r, "config", "transfer.unpackLimit", "1")  # keep received packs as they came
    sys.path.insert(0, str(a))
    try:
        sys.modules.pop("helpers", None)
        net = import_fresh("model").Net()
        tvault.update("mnist", net, result=0.1, repo=str(a))
        remotes.push(R(a))
        remotes.pull(R(b))
        with torch.no_grad():
            net.fc2.weight.add_(1.0)
        v2 = tvault.update("mnist", net, result=0.2, repo=str(a))
    finally:
        sys.path.remove(str(a))
        sys.modules.pop("model", None)
    recs = {k: r["chunks"][0] for k, r in registry.weight_records(R(a), v2.id).items()}
    before = _pack_objects(bare)
    remotes.push(R(a))
    sent = _pack_objects(bare) - before
    assert recs["fc2.weight"] in sent and recs["fc1.weight"] not in sent and recs["fc1.bias"] not in sent
    before = _pack_objects(b)
    remotes.pull(R(b))
    got = _pack_objects(b) - before
    assert recs["fc2.weight"] in got and recs["fc1.weight"] not in got and recs["fc1.bias"] not in got
    assert not (b / ".git" / "shallow").exists() and not (a / ".git" / "shallow").exists()
    assert tvault.load("mnist@2", repo=str(b))["fc2.weight"].equal(net.fc2.weight)
    for r in (a, b, bare):
        fsck(r)


def test_stale_transfer_marker_is_cleaned(tmp_path: Path) -> None:
    """A pull killed mid-transfer leaves its .git/shallow marker; the next transfer removes it."""
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    e = log_in(a, 0.3)
    remotes.push(R(a))
    remotes.pull(R(b))
    (b / ".git" / "shallow").write_text(e + "\n")
    log_in(a, 0.4)
    remotes.push(R(a))
    remotes.pull(R(b))
    assert not (b / ".git" / "shallow").exists()
    (b / ".git" / "shallow").write_text(git(b, "rev-parse", "HEAD").stdout)  # a real shallow clone's file is left alone
    remotes.pull(R(b))
    assert (b / ".git" / "shallow").exists()


def test_missing_repository_on_servers_is_clear(tmp_path: Path, daemon, http_server) -> None:
    (a,) = make_team(tmp_path, str(make_bare(tmp_path)), tmp_path / "shared.git", n=1)
    for url in (f"{daemon[1]}/nope.git", f"{http_server[1]}/nope.git"):
        p = run_tvault(a, "pull", url, check=False)
        assert p.returncode == 6 and "not a git repository" in p.stderr and len(p.stderr.strip().splitlines()) == 1, (
            p.stderr
        )


def test_progress_is_shown_on_a_terminal(tmp_path: Path) -> None:
    """Like git: progress (objects) on a terminal, nothing when piped."""
    import pty

    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    log_in(a, 0.5)
    remotes.push(R(a))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], NO_COLOR="1")
    pid, fd = pty.fork()
    if pid == 0:  # child: run the real CLI on the terminal
        os.chdir(b)
        os.execvpe("git", ["git", "tvault", "pull", f"file://{bare}"], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "objects" in text and "1 new entry" in text
    assert "objects" not in run_tvault(a, "pull").stderr


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_any_push_order_converges(tmp_path: Path, order: tuple[int, ...]) -> None:
    """Three teammates log on the same commit and push in every order, then pull: all hold the union."""
    bare = make_bare(tmp_path)
    team = make_team(tmp_path, str(bare), bare)
    ids = {log_in(m, 0.1 * (i + 1)) for i, m in enumerate(team)}
    for i in order:
        remotes.push(R(team[i]))
    for m in team:
        remotes.pull(R(m))
    views = [index_of(m) for m in team]
    assert same_entries(*views) and all_ids(team[0]) == ids
    assert [v.entry.id for v in models.versions(R(team[0]), "mnist")] == [
        v.entry.id for v in models.versions(R(team[2]), "mnist")
    ]
    fsck(bare)


def test_push_that_loses_a_race_merges_and_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone pushes between our pull and our push: the rejected push is merged and retried, nothing dropped."""
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    ea, eb = log_in(a, 0.1), log_in(b, 0.2)
    real_pull, calls = remotes.pull, []

    def racing_pull(repo, remote=None, progress=None):
        t = real_pull(repo, remote, progress)
        calls.append(repo.workdir)
        if len(calls) == 1:
            real_push(R(b))  # b wins the race
        return t

    real_push = remotes.push
    monkeypatch.setattr(remotes, "pull", racing_pull)
    t = remotes.push(R(a))
    assert t.pushed and [c.rstrip("/") for c in calls] == [
        str(a),
        str(b),
        str(a),
    ]  # a pulled twice: rejected once, retried
    monkeypatch.setattr(remotes, "pull", real_pull)
    remotes.pull(R(b))
    assert all_ids(a) == all_ids(b) == {ea, eb}
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    remotes.pull(R(fresh))
    assert index_of(fresh) == index_of(a)
    fsck(bare)


def test_fetch_one_into_a_repo_without_the_project_history(tmp_path: Path) -> None:
    bare = make_bare(tmp_path)
    (a,) = make_team(tmp_path, str(bare), bare, n=1)
    ids = [log_in(a, 0.1), log_in(a, 0.2)]
    remotes.push(R(a))
    commit = registry.resolve(R(a), ids[1]).commit
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(empty))
    e = remotes.fetch_one(R(empty), str(bare), f"{commit[:10]}:1")
    assert e.id == ids[1] and R(empty).get(commit) is None and R(empty).get(ids[0]) is None  # no project history
    assert set(tvault.load(ids[1], repo=str(empty))) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    fsck(empty)


def test_fetch_one_falls_back_to_the_full_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a shallow fetch of the index is refused, the whole index is fetched instead."""
    bare = make_bare(tmp_path)
    a, b = make_team(tmp_path, str(bare), bare, n=2)
    e = log_in(a, 0.5)
    remotes.push(R(a))
    monkeypatch.setattr(remotes, "_remote_url", lambda repo, remote: str(tmp_path / "no-such-remote"))
    assert remotes.fetch_one(R(b), "origin", "mnist@latest").id == e
    assert R(b).references.get("refs/tvault-remote/origin/notes") is not None
    fsck(b)
