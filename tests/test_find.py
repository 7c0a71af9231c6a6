"""git tvault find: the seed's three searches, combined conditions, output forms, the cache."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.helpers import git, import_fresh, modules_after, tvault, write


def _log(repo: Path, **kw):
    import tvault_git

    model = import_fresh("model")
    return tvault_git.log_all(model.Net(), repo=str(repo), **kw)


@pytest.fixture
def registry(repo: Path):
    """Five entries on two commits with different tags, results and metrics."""
    first = [
        _log(repo, tags={"lr": 0.01, "size": "0.5x"}, result=0.70, metrics={"acc": 0.70, "loss": 0.50}, name="small"),
        _log(repo, tags={"lr": 0.1, "size": "1x"}, result=0.80, metrics={"acc": 0.80, "loss": 0.30}, name="small"),
        _log(repo, tags={"lr": 0.01, "size": "2x"}, result=0.90, metrics={"acc": 0.90, "loss": 0.25}, name="big"),
    ]
    write(repo / "notes.txt", "second commit\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    second = [
        _log(
            repo,
            tags={"lr": 0.001, "size": "0.5x", "warmup": True},
            result=0.95,
            metrics={"acc": 0.95, "loss": 0.10},
            name="big",
        ),
        _log(repo, tags={"dropout": 0.2}, result=0.60, metrics={"f1": 0.5}),
    ]
    return first, second


def ids(out: str) -> list[str]:
    return [r["id"] for r in json.loads(out)]


def test_find_by_hash_lists_entries_with_index(repo, registry):
    first, second = registry
    rows = json.loads(tvault(repo, "find", "--hash", "HEAD~1", "--json").stdout)
    assert sorted((r["id"], r["index"]) for r in rows) == sorted((e.id, e.index) for e in first)
    assert [r["index"] for r in sorted(rows, key=lambda r: r["index"])] == [0, 1, 2]
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    for rev in ("HEAD", "main", head[:7]):
        assert sorted(ids(tvault(repo, "find", "--hash", rev, "--json").stdout)) == sorted(e.id for e in second)
    git(repo, "tag", "v1", "HEAD~1")
    assert len(ids(tvault(repo, "find", "--hash", "v1", "--json").stdout)) == 3
    text = tvault(repo, "find", "--hash", "HEAD~1").stdout
    assert f"{first[0].commit[:7]}:0" in text and f"{first[0].commit[:7]}:2" in text
    bad = tvault(repo, "find", "--hash", "nope", check=False)
    assert bad.returncode == 3 and "unknown revision" in bad.stderr and "Traceback" not in bad.stderr


def test_find_by_result_range_inclusive(repo, registry):
    first, second = registry
    got = ids(tvault(repo, "find", "--min", "0.8", "--max", "0.95", "--json").stdout)
    assert sorted(got) == sorted([first[1].id, first[2].id, second[0].id])
    assert sorted(ids(tvault(repo, "find", "--max", "0.7", "--json").stdout)) == sorted([first[0].id, second[1].id])
    assert ids(tvault(repo, "find", "--min", "0.95", "--json").stdout) == [second[0].id]


def test_find_by_tag_matches_typed_values(repo, registry):
    first, second = registry
    assert sorted(ids(tvault(repo, "find", "--tag", "lr", "0.01", "--json").stdout)) == sorted(
        [first[0].id, first[2].id]
    )
    assert ids(tvault(repo, "find", "--tag", "lr", "1e-3", "--json").stdout) == [second[0].id]
    assert sorted(ids(tvault(repo, "find", "--tag", "size", "0.5x", "--json").stdout)) == sorted(
        [first[0].id, second[0].id]
    )
    assert ids(tvault(repo, "find", "--tag", "warmup", "true", "--json").stdout) == [second[0].id]
    # conditions combine with AND
    both = ids(tvault(repo, "find", "--tag", "size", "0.5x", "--tag", "lr", "0.01", "--json").stdout)
    assert both == [first[0].id]
    assert ids(tvault(repo, "find", "--tag", "lr", "0.01", "--min", "0.8", "--hash", "HEAD~1", "--json").stdout) == [
        first[2].id
    ]


def test_find_where_sort_best_limit(repo, registry):
    first, second = registry
    assert sorted(ids(tvault(repo, "find", "--where", "acc>=0.9", "--json").stdout)) == sorted(
        [first[2].id, second[0].id]
    )
    assert ids(tvault(repo, "find", "--where", "loss<0.2", "--json").stdout) == [second[0].id]
    assert ids(tvault(repo, "find", "--where", "lr<0.05", "--where", "acc<0.9", "--json").stdout) == [first[0].id]
    assert ids(tvault(repo, "find", "--where", "result>0.9", "--json").stdout) == [second[0].id]
    asc = ids(tvault(repo, "find", "--sort", "loss", "--asc", "--json").stdout)
    assert asc[:4] == [second[0].id, first[2].id, first[1].id, first[0].id] and asc[4] == second[1].id  # missing last
    desc = ids(tvault(repo, "find", "--sort", "acc", "--json").stdout)
    assert desc[:4] == [second[0].id, first[2].id, first[1].id, first[0].id]
    assert ids(tvault(repo, "find", "--sort", "result", "-n", "2", "--json").stdout) == [second[0].id, first[2].id]
    assert ids(tvault(repo, "find", "--best", "loss", "--json").stdout) == [second[0].id]
    assert ids(tvault(repo, "find", "--best", "acc", "--hash", "HEAD~1", "--json").stdout) == [first[2].id]
    assert ids(tvault(repo, "find", "--best", "acc:min", "--json").stdout) == [first[0].id]
    # a tag with only text values sorts by its text; --best needs numbers
    by_size = ids(tvault(repo, "find", "--sort", "size", "--asc", "--json").stdout)
    assert by_size == [first[0].id, second[0].id, first[1].id, first[2].id, second[1].id]
    bad = tvault(repo, "find", "--best", "size", check=False)
    assert bad.returncode == 2 and "no numeric values" in bad.stderr and "Traceback" not in bad.stderr
    newest = ids(tvault(repo, "find", "-n", "1", "--json").stdout)
    assert newest == [second[1].id]
    by_date = ids(tvault(repo, "find", "--sort", "date", "--asc", "--json").stdout)
    assert by_date == [e.id for e in first + second]


def test_find_name_author_branch_dates(repo, registry):
    first, second = registry
    assert sorted(ids(tvault(repo, "find", "--name", "big", "--json").stdout)) == sorted([first[2].id, second[0].id])
    assert len(ids(tvault(repo, "find", "--name", "sm*", "--json").stdout)) == 2
    assert len(ids(tvault(repo, "find", "--author", "test author", "--json").stdout)) == 5
    assert len(ids(tvault(repo, "find", "--author", "example\\.com", "--json").stdout)) == 5
    assert ids(tvault(repo, "find", "--author", "someone-else", "--json").stdout) == []
    assert len(ids(tvault(repo, "find", "--branch", "main", "--json").stdout)) == 5
    assert len(ids(tvault(repo, "find", "--since", "1 hour ago", "--json").stdout)) == 5
    assert ids(tvault(repo, "find", "--until", "2000-01-01", "--json").stdout) == []
    assert len(ids(tvault(repo, "find", "--since", "2000-01-01", "--until", "now", "--json").stdout)) == 5


def test_find_table_has_every_tag_and_metric_column(repo, registry):
    out = tvault(repo, "find").stdout
    header = out.splitlines()[0].split()
    for col in (
        "id",
        "ref",
        "name",
        "result",
        "acc",
        "loss",
        "f1",
        "lr",
        "size",
        "warmup",
        "dropout",
        "author",
        "date",
    ):
        assert col in header, col
    assert len(out.splitlines()) == 6
    row = next(ln for ln in out.splitlines() if ln.split()[0] == registry[1][1].id[:10])
    assert "0.2" in row.split()


def test_find_empty_result_and_exit_code(repo, registry):
    p = tvault(repo, "find", "--min", "5")
    assert p.returncode == 0 and p.stdout.strip() == "no entries match"
    p = tvault(repo, "find", "--min", "5", "--exit-code", check=False)
    assert p.returncode == 1
    assert tvault(repo, "find", "--min", "5", "--json").stdout.strip() == "[]"
    assert tvault(repo, "find", "--min", "0.9", "--exit-code").returncode == 0


def test_find_csv(repo, registry):
    rows = list(csv.DictReader(io.StringIO(tvault(repo, "find", "--csv", "--sort", "result").stdout)))
    assert len(rows) == 5
    assert rows[0]["id"] == registry[1][0].id and rows[0]["lr"] == "0.001" and rows[0]["warmup"] == "true"
    assert (
        rows[0]["size"] == "0.5x"
        and rows[-1]["dropout"] == "0.2"
        and rows[0]["dropout"] == ""
        and rows[0]["acc"] == "0.95"
    )


def test_find_bad_input_is_one_line(repo, registry):
    for args in (
        ["--where", "acc>>0.9"],
        ["--where", "acc"],
        ["--where", "acc>high"],
        ["--since", "someday"],
        ["--best", "acc:up"],
        ["-n", "-1"],
        ["--author", "("],
    ):
        p = tvault(repo, "find", *args, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.startswith("tvault: error:") and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_find_python_api_shape(repo, registry):
    from tvault_git.registry import query as query

    rows = query.find(str(repo), tags=[("lr", "0.01")], where=["acc>0.75"])
    assert [r["id"] for r in rows] == [registry[0][2].id]
    r = rows[0]
    assert set(r) == {
        "id",
        "ref",
        "commit",
        "index",
        "name",
        "result",
        "metrics",
        "tags",
        "author",
        "email",
        "created",
        "branch",
        "dirty",
        "message",
        "version",
    }
    assert r["tags"] == {"lr": 0.01, "size": "2x"} and r["result"] == 0.9 and r["index"] == 2
    assert query.find(str(repo), tags=[("lr", 0.01)], best="acc")[0]["id"] == registry[0][2].id


def test_cache_follows_new_entries_and_rebuilds(repo, registry):
    from tvault_git.registry import cache as cache

    assert len(ids(tvault(repo, "find", "--json").stdout)) == 5
    path = Path(repo / ".git" / "tvault" / cache.FILE_NAME)
    assert path.exists()
    e = _log(repo, tags={"lr": 0.5}, result=0.99)
    assert ids(tvault(repo, "find", "--tag", "lr", "0.5", "--json").stdout) == [e.id]
    assert ids(tvault(repo, "log", "-n", "1", "--json").stdout) == [e.id]
    path.unlink()
    assert len(ids(tvault(repo, "find", "--json").stdout)) == 6
    # the bulk rebuild drops the indexes while it loads: they must all be back, over every row
    import sqlite3

    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert names == {
        "entries_commit",
        "entries_result",
        "entries_ts",
        "entries_name",
        "kv_num",
        "kv_str",
        "kv_js",
        "kv_id",
    }
    assert (
        con.execute("SELECT COUNT(*) FROM kv INDEXED BY kv_id").fetchone()[0]
        == con.execute("SELECT COUNT(*) FROM kv").fetchone()[0]
        > 0
    )
    con.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    assert len(ids(tvault(repo, "find", "--json").stdout)) == 6
    # a rewritten notes history (e.g. force-fetched) is followed too
    git(repo, "update-ref", "-d", "refs/notes/tvault")
    assert tvault(repo, "find").stdout.strip() == "no entries match"


def test_cache_after_fetch_from_remote(tmp_path, repo, registry):
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "--no-local", str(repo), str(other))
    # notes arrive before the entry objects: those entries are not shown yet, never wrongly
    git(other, "fetch", "-q", "origin", "refs/notes/tvault:refs/notes/tvault")
    assert tvault(other, "find").stdout.strip() == "no entries match"
    git(other, "fetch", "-q", "origin", "refs/tvault/*:refs/tvault/*")
    assert len(ids(tvault(other, "find", "--json").stdout)) == 5
    # a new entry logged upstream shows up on the first find after the fetch
    e = _log(repo, tags={"lr": 0.3}, result=0.5)
    git(other, "fetch", "-q", "origin", "refs/tvault/*:refs/tvault/*", "+refs/notes/tvault:refs/notes/tvault")
    assert ids(tvault(other, "find", "--tag", "lr", "0.3", "--json").stdout) == [e.id]
    assert len(ids(tvault(other, "find", "--json").stdout)) == 6


def test_find_log_show_do_not_import_torch(repo, registry):
    e = registry[0][0]
    for argv in (["find", "--min", "0.5"], ["log"], ["show", e.id], ["find", "--best", "acc", "--csv"]):
        mods = modules_after(repo, argv)
        assert "torch" not in mods, argv


@pytest.mark.parametrize("with_git", [True, False])
def test_manifests_read_in_one_batch_match_one_by_one(repo, monkeypatch, with_git):
    """The cache build reads all manifests through one `git cat-file --batch` (or one by one where git
    cannot run): same manifests, None for an entry whose objects are not here, an error for a commit
    that is not an entry."""
    import pygit2
    import torch

    import tvault_git as tvault
    from tvault_git.errors import CorruptEntry
    from tvault_git.registry import entries as reg

    if not with_git:

        def no_git(*a, **k):
            raise FileNotFoundError("git")

        monkeypatch.setattr(reg.subprocess, "run", no_git)
    ids = [tvault.log_all(torch.nn.Linear(2, 2), tags={"i": i}).id for i in range(3)]
    r = pygit2.Repository(str(repo))
    absent = "0" * 40
    got = reg.read_manifests(r, ids + [absent])
    assert got[absent] is None
    assert [got[i] for i in ids] == [reg.read_manifest(r, i) for i in ids]
    assert [got[i]["tags"]["i"] for i in ids] == [0, 1, 2]
    head = str(r.head.target)  # one unreadable entry is reported for itself, never fails the batch
    bad = reg.read_manifests(r, [head, ids[0]])
    assert isinstance(bad[head], CorruptEntry) and "not a tvault entry" in str(bad[head]) and bad[ids[0]] == got[ids[0]]
