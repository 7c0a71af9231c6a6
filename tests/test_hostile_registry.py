"""Hostile registries pulled by a victim: damaged entries, re-pointed refs, odd refs, hidden lines (issue 14).

D1 D2 D12 D15 D16 D19 D20 and ``git tvault rm`` / ``git tvault fsck``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from tests.helpers import git
from tests.hostile_kit import (
    _DROP,
    GITLINK,
    World,
    add_note,
    alias_commit,
    blob,
    cli,
    entry,
    log_in,
    manifest,
    no_traceback,
    set_ref,
    world,
)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return world(tmp_path)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _bad_manifests(c: str) -> dict[str, object]:
    m = lambda **kw: json.dumps(manifest(c, **kw)).encode()  # noqa: E731
    return {
        "format-2.0": m(format="2.0"),
        "array": b"[1, 2, 3]",
        "bad-utf8": b'{"format": "1.0", "name": "\xff\xfe"}',
        "bad-json": b'{"format": "1.0",',
        "gitlink": (GITLINK, "1" * 40),
        "author-string": m(author="eve"),
        "name-object": m(name={"x": 1}),
        "message-list": m(message=["a"]),
        "int-5000-digits": m().replace(b'"tags": {}', b'"tags": {"x": ' + b"9" * 5000 + b"}"),
        "int-400-digits": m().replace(b'"result": 0.05', b'"result": ' + b"9" * 400),
        "deep-100k": m().replace(b'"tags": {}', b'"tags": {"x": ' + _deep(100_000) + b"}"),
        "created-number": m(created=12345),
        "model-list": m(model=[1]),
        "parameters-string": m(model={"class": "x", "parameters": "many"}),
        "tags-list": m(tags=[1]),
        "versions-list": m(versions=[1]),
        "commit-not-hex": m(commit="../../x"),
    }


@pytest.mark.parametrize("kind", list(_bad_manifests("0" * 40)))
def test_one_damaged_entry_never_breaks_the_rest(w: World, kind: str) -> None:
    """D1/D19/D20: the bad entry is listed as damaged and skipped; log/find/history/show of others work."""
    bad = entry(w, _bad_manifests(w.commit)[kind], name="mnist", seq=5)
    p = w.pull()
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    for args in (
        ["log"],
        ["find", "--name", "mnist"],
        ["history", "mnist"],
        ["find", "--best", "result"],
        ["show", "HEAD:0"],
        ["alias"],
    ):
        q = cli(w.victim, *args)
        no_traceback(q)
        assert q.returncode == 0, (args, q.stderr)
        if args[0] in ("log", "find", "history"):
            assert w.victim_entry[:10] in q.stdout, (args, q.stdout)
            assert bad[:10] not in q.stdout or "damaged" in q.stdout or "unsupported" in q.stdout, (args, q.stdout)
    log = cli(w.victim, "log")
    assert bad[:10] in log.stderr and ("damaged" in log.stderr or "newer" in log.stderr), log.stderr
    h = cli(w.victim, "history", "mnist")
    assert "objects not here" not in h.stdout, h.stdout
    s = cli(w.victim, "show", bad)
    no_traceback(s)
    assert s.returncode in (4, 5) and s.stderr.startswith("tvault: error:"), s.stderr
    f = cli(w.victim, "fsck")
    no_traceback(f)
    assert f.returncode in (4, 5) and bad[:10] in f.stdout, (f.stdout, f.stderr)
    import tvault_git as tvault

    assert w.victim_entry in [e.id for e in tvault.entries(str(w.victim))]
    # remove it; the removal travels to a teammate through the team remote
    r = cli(w.victim, "rm", bad)
    assert r.returncode == 0, r.stderr
    assert cli(w.victim, "fsck").returncode == 0
    assert bad[:10] not in cli(w.victim, "log").stderr
    assert cli(w.victim, "push", "origin").returncode == 0
    mate = w.tmp / "mate"
    git(w.tmp, "clone", "-q", str(w.origin), str(mate))
    assert cli(mate, "pull", "origin").returncode == 0
    ml = cli(mate, "log")
    assert ml.returncode == 0 and w.victim_entry[:10] in ml.stdout and bad[:10] not in ml.stderr, ml.stderr
    assert cli(mate, "fsck").returncode == 0
    # pulling the attacker again does not bring it back
    assert w.pull().returncode == 0
    assert bad[:10] not in cli(w.victim, "log").stderr


def test_rm_refuses_unknown_and_keeps_indexes(w: World) -> None:
    second = log_in(w.victim, 0.2)
    r = cli(w.victim, "rm", w.victim_entry)
    assert r.returncode == 0, r.stderr
    show = cli(w.victim, "show", "HEAD:1", "--json")
    assert json.loads(show.stdout)["id"] == second  # the removed entry keeps its slot: HEAD:1 is not re-pointed
    gone = cli(w.victim, "show", "HEAD:0")
    assert gone.returncode == 3 and "removed" in gone.stderr, gone.stderr
    bad = cli(w.victim, "rm", "feedbeef")
    assert bad.returncode == 3 and bad.stderr.startswith("tvault: error:"), bad.stderr


def test_pull_never_repoints_head_0_or_renames(w: World, tmp_path: Path) -> None:
    """D2: seq -1, a line re-naming the victim's entry, and fetch REMOTE REF copying seq."""
    entry(w, seq=-1, name="mnist")
    add_note(w, w.commit, f"model -5 {w.victim_entry} evil result=99")
    assert w.pull().returncode == 0
    head0 = json.loads(cli(w.victim, "show", "HEAD:0", "--json").stdout)
    assert head0["id"] == w.victim_entry
    h = cli(w.victim, "history", "mnist", "--json")
    assert h.returncode == 0, h.stderr
    assert w.victim_entry in [r["id"] for r in json.loads(h.stdout)]
    assert cli(w.victim, "history", "evil").returncode == 3  # the forged name did not take the entry
    # the single-entry fetch copies the remote's seq: it must not take slot 0 either
    v2 = w.tmp / "v2"
    git(w.tmp, "clone", "-q", str(w.origin), str(v2))
    git(v2, "fetch", "-q", "origin", "refs/tvault/*:refs/tvault/*", "refs/notes/tvault:refs/notes/tvault")
    k = 0
    while True:  # an entry of seq 0 whose id sorts before the victim's: copying its seq would take slot 0
        evil1 = entry(w, manifest(w.commit, tags={"k": k}), seq=0, on=w.commit, note=None)
        k += 1
        if evil1 < w.victim_entry:
            break
    add_note(w, w.commit, f"model 0 {evil1} mnist result=0.05")
    f = cli(v2, "fetch", str(w.evil), evil1[:12])
    assert f.returncode == 0, f.stderr
    assert json.loads(cli(v2, "show", "HEAD:0", "--json").stdout)["id"] == w.victim_entry


def test_versions_and_best_follow_manifests_not_notes(w: World) -> None:
    """D2: created=1970 / 9999 and result=inf in note lines do not make the attacker @1, @latest, @best."""
    own2 = log_in(w.victim, 0.3)
    git(w.victim, "push", "-q", "origin", "refs/tvault/*:refs/tvault/*", "+refs/notes/tvault:refs/notes/tvault")
    git(w.tmp, "--git-dir", str(w.evil), "fetch", "-q", str(w.origin), "+refs/*:refs/*")
    # by their manifests, early is the newest and late the oldest version; the note lines say the opposite
    early = entry(
        w,
        manifest(w.commit, created="2031-01-01T00:00:00+00:00", result=0.01),
        seq=7,
        result="0.01",
        created="1970-01-01T00:00:00+00:00",
    )
    late = entry(
        w,
        manifest(w.commit, created="2020-01-01T00:00:00+00:00", result=0.02),
        seq=8,
        result="inf",
        created="9999-01-01T00:00:00+00:00",
    )
    assert w.pull().returncode == 0
    hist = json.loads(cli(w.victim, "history", "mnist", "--json").stdout)
    assert hist[0]["id"] == late and hist[-1]["id"] == early, hist
    best = json.loads(cli(w.victim, "show", "mnist@best", "--json").stdout)["id"]
    top = json.loads(cli(w.victim, "find", "--name", "mnist", "--best", "result", "--json").stdout)[0]["id"]
    assert best == top == own2


def test_odd_remote_refs_do_not_break_pull_push_or_log(w: World) -> None:
    """D12: notes/aliases refs at a blob/tree, an entry ref with a non-hex name."""
    r = w.er
    set_ref(w, "refs/tvault/entries/-rf", w.victim_entry)
    for _ in range(2):
        p = w.pull()
        no_traceback(p)
        assert p.returncode == 0, p.stderr
    assert "refs/tvault/entries/-rf" not in pygit2.Repository(str(w.victim)).references
    set_ref(w, "refs/notes/tvault", blob(r, b"not a notes commit"))
    set_ref(w, "refs/tvault/aliases", str(r.TreeBuilder().write()))
    p = w.pull()
    no_traceback(p)
    assert p.returncode in (0, 6), p.stderr
    assert cli(w.victim, "push", "origin").returncode == 0
    assert cli(w.victim, "log").returncode == 0
    # README's plain git fetch of a non-commit notes ref: one line, no traceback
    git(w.victim, "fetch", "-q", str(w.evil), "+refs/notes/tvault:refs/notes/tvault")
    for args in (["log"], ["history", "mnist"], ["alias"], ["fsck"]):
        q = cli(w.victim, *args)
        no_traceback(q)
        assert q.returncode == 4 and "refs/notes/tvault" in q.stderr, (args, q.stderr)


def test_future_dated_alias_does_not_win_later_merges(w: World) -> None:
    """D15: a record dated 2999 is clamped to the merge time; the victim's later reset stands."""
    evil = entry(w, manifest(w.commit, created="2031-01-01T00:00:00+00:00"))
    alias_commit(w, f"alias mnist production {evil} 2999-01-01T00:00:00.000000Z eve@evil\n")
    assert w.pull().returncode == 0
    assert cli(w.victim, "alias", "mnist@1", "production").returncode == 0
    assert json.loads(cli(w.victim, "show", "mnist@production", "--json").stdout)["id"] == w.victim_entry
    alias_commit(
        w,
        f"alias mnist production {evil} 2999-01-01T00:00:00.000000Z eve@evil\nalias mnist other {evil} 2026-01-01T00:00:00.000000Z eve@evil\n",
    )
    assert w.pull().returncode == 0
    assert json.loads(cli(w.victim, "show", "mnist@production", "--json").stdout)["id"] == w.victim_entry


def test_hidden_note_line_via_unicode_separator(w: World) -> None:
    """D16: git sees one 'comment' line; tvault must not obey a 'model' line hidden after U+2028."""
    evil = entry(w, note=None)
    add_note(w, w.commit, f"comment all ok\u2028model -9 {evil} mnist result=1".encode())
    assert w.pull().returncode == 0
    assert json.loads(cli(w.victim, "show", "HEAD:0", "--json").stdout)["id"] == w.victim_entry
    assert evil[:10] not in cli(w.victim, "log").stdout


def test_damaged_entry_over_git_daemon(w: World, daemon) -> None:
    """D1 over git://: the same boundary when the registry arrives through git daemon."""
    base, url = daemon
    bad = entry(w, b"[1]", seq=3)
    git(w.tmp, "clone", "-q", "--mirror", str(w.evil), str(base / "evil.git"))
    p = w.pull(remote=f"{url}/evil.git")
    assert p.returncode == 0, p.stderr
    log = cli(w.victim, "log")
    assert log.returncode == 0 and w.victim_entry[:10] in log.stdout and bad[:10] in log.stderr


def test_entries_api_with_damaged_manifest(w: World) -> None:
    """D20: tvault.entries() skips a manifest whose created is a number (no TypeError)."""
    entry(w, manifest(w.commit, created=5), seq=3)
    assert w.pull().returncode == 0
    import tvault_git as tvault

    assert [e.id for e in tvault.entries(str(w.victim))] == [w.victim_entry]


_ = _DROP  # re-exported helper kept for other test modules
