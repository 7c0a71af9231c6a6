"""Entry lifecycle: version numbers that never move, entries that survive rewrites without hooks,
retention (``git tvault gc --keep-best``) with the space measured on disk. Real git throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pygit2
import torch

import tvault_git as tv
from tests.helpers import GIT_ENV, git, tvault
from tvault_git.gitutil.repo import open_repo
from tvault_git.registry import names, notes

# A writer that stamps its times, then waits (a slow disk) until told to go on before the weights go in.
SLOW_WRITER = """
import os, time, torch, tvault_git as tv
from tvault_git.storage import tensors
real = tensors.store_tensors
def slow(*a, **k):
    open(os.environ["STARTED"], "w").close()
    while not os.path.exists(os.environ["GO"]):
        time.sleep(0.01)
    return real(*a, **k)
tensors.store_tensors = slow
print(tv.log_all(torch.nn.Linear(8, 8), name="m", result=0.1).id)
"""


def _versions(repo: Path) -> dict[str, int]:
    return {v.entry.id: v.number for v in names.versions(open_repo(str(repo)), "m")}


def _cli_versions(repo: Path) -> dict[str, int]:
    rows = json.loads(tvault(repo, "log", "--json").stdout)
    return {r["id"]: r["version"] for r in rows if r.get("name") == "m"}


def _fast_and_slow(repo: Path, tmp_path: Path, check) -> tuple[str, str]:
    """Two writers of model m: the slow one starts first and publishes last; ``check(fast_id)`` runs
    between the two publications. Returns (fast id, slow id)."""
    started, go = tmp_path / "started", tmp_path / "go"
    env = {
        **os.environ,
        **GIT_ENV,
        "STARTED": str(started),
        "GO": str(go),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    slow = subprocess.Popen([sys.executable, "-c", SLOW_WRITER], cwd=repo, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():  # the slow writer has stamped 'created' and is writing weights
            assert slow.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        fast = tv.log_all(torch.nn.Linear(8, 8), name="m", result=0.2)
        check(fast.id)
        go.touch()
        out, _ = slow.communicate(timeout=120)
    finally:
        go.touch()
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == 0
    return fast.id, out.strip().splitlines()[-1]


def test_a_version_once_shown_never_changes_when_an_earlier_writer_publishes_later(repo, tmp_path):
    def shown_first(fast_id: str) -> None:
        assert _versions(repo)[fast_id] == 1 and _cli_versions(repo)[fast_id] == 1

    fast_id, late = _fast_and_slow(repo, tmp_path, shown_first)

    assert _versions(repo) == {fast_id: 1, late: 2}  # the first-published entry kept the number it was shown with
    assert _cli_versions(repo) == {fast_id: 1, late: 2}
    assert tv.load("m@1", repo=str(repo)) is not None and names.resolve(open_repo(str(repo)), "m", "1").id == fast_id
    # the label readers of `git log --notes=tvault` see matches
    shown_notes = git(repo, "notes", "--ref=tvault", "show", "HEAD").stdout
    assert f"m@1 result 0.2 entry {fast_id[:10]}" in shown_notes and f"m@2 result 0.1 entry {late[:10]}" in shown_notes


def _commit(repo: Path, fname: str, text: str, msg: str) -> str:
    (repo / fname).write_text(text)
    git(repo, "add", fname)
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def _log_rows(repo: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(tvault(repo, "log", "--json").stdout)}


def _gone(repo: Path, sha: str) -> bool:
    return git(repo, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode != 0


def test_rewrites_without_hooks_orphans_are_listed_survive_notes_prune_and_reattach(repo):
    from model import Net

    git(repo, "checkout", "-q", "-b", "feature")
    c1 = _commit(repo, "a.txt", "a\n", "c1")
    a = tv.log_all(Net(), name="m", result=0.1)
    c2 = _commit(repo, "b.txt", "b\n", "c2")
    b = tv.log_all(Net(), name="m", result=0.2)
    c3 = _commit(repo, "c.txt", "c\n", "c3")
    d = tv.log_all(Net(), name="m", result=0.4)  # its commit is dropped below: nothing can match it
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "checkout", "-q", "main")
    _commit(repo, "z.txt", "z\n", "on main")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")  # c1, c2 rewritten: new trees, same author, date and message
    c4 = _commit(repo, "e.txt", "e\n", "c4")
    c = tv.log_all(Net(), name="m", result=0.3)
    git(repo, "commit", "-q", "--amend", "-m", "c4 reworded")  # same tree, new message
    before = _versions(repo)
    assert before == {a.id: 1, b.id: 2, d.id: 3, c.id: 4}
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert all(_gone(repo, s) for s in (c1, c2, c3, c4))

    rows = _log_rows(repo)
    assert {i for i, r in rows.items() if r["orphaned"]} == {a.id, b.id, c.id, d.id}
    p = tvault(repo, "log")
    assert p.stdout.count("(orphaned: commit gone)") == 4 and "4 entries are orphaned" in p.stderr
    assert "is gone" in tvault(repo, "show", a.id).stdout

    git(repo, "notes", "--ref=tvault", "prune")  # plain git drops the notes of the gone commits
    assert _log_rows(repo) == {}
    assert "4 entries are orphaned" in tvault(repo, "log").stderr  # still known, from the refs
    assert _versions(repo) == before and names.resolve(open_repo(str(repo)), "m", "2").id == b.id
    listed = json.loads(tvault(repo, "orphans", "--json").stdout)
    assert {(o["id"], o["kind"]) for o in listed} == {(x.id, "unindexed") for x in (a, b, c, d)}
    shown = tvault(repo, "show", b.id).stdout
    assert "orphaned" in shown and "no note lists it" in shown
    assert tv.load(b.id, repo=str(repo)) is not None  # loadable by id throughout
    fsck = tvault(repo, "fsck")
    assert fsck.stdout.count("orphaned") == 4 and "4 orphaned" in fsck.stderr

    dry = tvault(repo, "reattach", "--dry-run")
    assert dry.stdout.count("would move") == 3 and _log_rows(repo) == {}
    done = tvault(repo, "reattach")
    assert "(by same author, date and message)" in done.stdout and "(by same tree)" in done.stdout
    assert f"unmatched  {d.id[:10]}" in done.stdout
    rows = _log_rows(repo)
    new = {x: git(repo, "rev-parse", f"feature{s}").stdout.strip() for x, s in ((a.id, "~2"), (b.id, "~1"), (c.id, ""))}
    assert {i: r["commit"] for i, r in rows.items()} == new
    assert not any(r["orphaned"] for r in rows.values())
    assert _versions(repo) == before  # published= travelled with the lines; the unmatched one keeps its number
    assert [r["id"] for r in json.loads(tvault(repo, "find", "--hash", "HEAD", "--json").stdout)] == [c.id]
    assert [x["id"] for x in json.loads(tvault(repo, "orphans", "--json").stdout)] == [d.id]
    git(repo, "fsck", "--full")
    assert tvault(repo, "reattach").stdout.count("unmatched") == 1  # a second run changes nothing
    assert (
        "an orphan no note listed" in tvault(repo, "rm", "--yes", d.id).stdout
    )  # the way out for one that cannot match
    assert json.loads(tvault(repo, "orphans", "--json").stdout) == []
    assert tvault(repo, "show", d.id, check=False).returncode != 0


def test_reattach_follows_the_reflog_for_an_amend_that_changed_code_and_message(repo):
    from model import Net

    _commit(repo, "a.txt", "a\n", "first")
    e = tv.log_all(Net(), result=0.5)
    old = git(repo, "rev-parse", "HEAD").stdout.strip()
    (repo / "a.txt").write_text("changed\n")
    git(repo, "commit", "-q", "-a", "--amend", "-m", "something else")
    new = git(repo, "rev-parse", "HEAD").stdout.strip()
    listed = json.loads(tvault(repo, "orphans", "--json").stdout)
    assert [(o["id"], o["commit"], o["kind"]) for o in listed] == [(e.id, old, "unreachable")]
    out = tvault(repo, "reattach").stdout
    assert "(by the reflog (commit --amend))" in out
    assert [r["id"] for r in json.loads(tvault(repo, "find", "--hash", new, "--json").stdout)] == [e.id]
    assert json.loads(tvault(repo, "orphans", "--json").stdout) == []


def _pack_dir_bytes(repo: Path) -> int:
    d = repo / ".git/objects/pack"
    return sum(os.path.getsize(d / n) for n in os.listdir(d))


def _objects_bytes(repo: Path) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(repo / ".git/objects") for f in fs)


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 256))


TENSOR = 256 * 256 * 4  # one float32 weight matrix; random values: stored about that size


def test_rm_then_gc_frees_the_weights_measured_on_disk(repo):
    keep = tv.log_all(_net(1), result=0.5)
    gone = tv.log_all(_net(2), result=0.4)
    git(repo, "gc", "-q", "--prune=now")
    before = _pack_dir_bytes(repo)
    tvault(repo, "rm", "--yes", gone.id)
    assert "freed 0 B" in tvault(repo, "gc").stdout  # packs younger than --min-age are spared
    out = tvault(repo, "gc", "--min-age", "0").stdout
    git(repo, "gc", "-q", "--prune=now")
    after = _pack_dir_bytes(repo)
    assert 1.8 * TENSOR <= before - after <= 2.3 * TENSOR  # both weight matrices of the removed entry
    assert "1 unreferenced weight pack" in out
    git(repo, "fsck", "--full")
    assert torch.equal(tv.load(keep.id, repo=str(repo))["0.weight"], _net(1)[0].weight)


def test_retention_keeps_best_latest_and_aliased_and_frees_shared_tensors_once(repo):
    losses = [0.9, 0.5, 0.8, 0.3, 0.7, 0.6]  # versions 1..6
    ids = []
    for i, loss in enumerate(losses):
        net = _net(10 + i)
        if i == 4:  # version 5 shares its first layer with version 4 (kept): that tensor must stay
            net[0].load_state_dict(_net(13)[0].state_dict())
        ids.append(tv.log_all(net, name="m", metrics={"val_loss": loss}).id)
    tv.log_all(_net(99), result=1.0)  # unnamed: never touched by a policy
    tvault(repo, "alias", "m@1", "prod")
    pack_dir = str(repo / ".git/objects/pack")
    from tvault_git.storage import packmerge

    packmerge.merge(open_repo(str(repo)), pack_dir, packmerge.tvault_packs(pack_dir))  # as after many entries
    git(repo, "gc", "-q", "--prune=now")
    before_pack, before_all = _pack_dir_bytes(repo), _objects_bytes(repo)
    policy = ["gc", "--keep-best", "2", "--by", "val_loss", "--keep-last", "1", "--name", "m"]

    dry = tvault(repo, *policy, "--dry-run").stdout
    assert [ln.split()[2] for ln in dry.splitlines() if ln.startswith("would remove  ")] == ["m@3", "m@5"]
    assert "keep    m@1" in dry and "(alias prod)" in dry and "(best val_loss)" in dry and "(latest)" in dry
    promised = dry.splitlines()[-1]
    assert promised.startswith("would remove 2 version(s) and free ")
    assert _pack_dir_bytes(repo) == before_pack and len(_versions(repo)) == 6

    assert tvault(repo, *policy, input="n\n", check=False).returncode != 0  # declined: nothing removed
    assert len(json.loads(tvault(repo, "log", "--json").stdout)) == 7

    out = tvault(repo, *policy, "--yes").stdout
    assert "removed 2 version(s)" in out and "1 rewritten" in out
    git(repo, "gc", "-q", "--prune=now")
    freed_pack = before_pack - _pack_dir_bytes(repo)
    freed_all = before_all - _objects_bytes(repo)
    # v3: two matrices; v5: only its own second layer (its first is v4's, which is kept)
    assert 2.8 * TENSOR <= freed_pack <= 3.3 * TENSOR
    assert freed_all >= freed_pack
    reported = out.split("freed ", 1)[1].split(" (measured")[0]
    assert reported.endswith("KiB") and abs(float(reported[:-4]) * 1024 - freed_pack) < 0.1 * freed_pack
    said = promised.split(" free ")[1]
    assert said.endswith(" KiB of weights")  # the dry run said what the real run freed (the .idx aside)
    assert abs(float(said.split()[0]) - float(reported[:-4])) < 0.01 * float(reported[:-4])

    left = {v.number: v for v in names.versions(open_repo(str(repo)), "m")}
    assert [n for n, v in left.items() if not v.entry.removed] == [1, 2, 4, 6]  # numbers kept
    for n in (1, 2, 4, 6):
        got = tv.load(f"m@{n}", repo=str(repo))
        assert torch.equal(got["1.weight"], _net(10 + n - 1)[1].weight)
    assert len(json.loads(tvault(repo, "log", "--json").stdout)) == 5
    git(repo, "fsck", "--full")


def test_a_pulled_line_cannot_give_an_entry_an_earlier_publication(repo, tmp_path):
    """A remote's line for one of our entries, on another commit, with its own ``published=``
    (still not before the entry's ``created``) must not renumber our versions."""
    fast, slow = _fast_and_slow(repo, tmp_path, lambda _: None)
    r = open_repo(str(repo))
    before = _versions(repo)
    assert before == {fast: 1, slow: 2}
    created = r.get(slow).tree["tvault.json"].data.decode()
    created = json.loads(created)["created"]
    other = _commit(repo, "x.txt", "x\n", "teammate's commit")
    tip = r.references["refs/notes/tvault"].peel(pygit2.Commit)
    forged = f"model 0 {slow} m result=0.1 created={created} published={created}\n"
    tree = notes._write_path(r, tip.tree, [other[:2], other[2:]], r.create_blob(forged.encode()))
    sig = pygit2.Signature("mallory", "m@example.com")
    theirs = r.create_commit(None, sig, sig, "theirs", tree, [tip.id])
    assert notes.merge(r, theirs)
    assert any(n.entry == slow for n in notes.read(r, other))  # their line arrived...
    assert _versions(repo) == before  # ...without renumbering anything


def test_rm_takes_several_refs_asks_first_and_drops_their_aliases(repo):
    a = tv.log_all(torch.nn.Linear(4, 4), name="m", result=0.1)
    b = tv.log_all(torch.nn.Linear(4, 4), name="m", result=0.9)
    c = tv.log_all(torch.nn.Linear(4, 4), name="m", result=0.5)
    tvault(repo, "alias", "m@2", "prod")
    # not a terminal and no --yes: nothing is removed, one line says what to do
    no = tvault(repo, "rm", "m@1", "m@2", check=False)
    assert no.returncode == 2 and "pass --yes" in no.stderr and "Traceback" not in no.stderr
    assert sorted(_versions(repo)) == sorted([a.id, b.id, c.id])
    # one ref that does not resolve: nothing is removed either
    bad = tvault(repo, "rm", "--yes", "m@1", "m@9", check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert sorted(_versions(repo)) == sorted([a.id, b.id, c.id])
    out = tvault(repo, "rm", "--yes", "m@1", "m@2", a.id).stdout  # the same entry twice counts once
    assert out.count("removed ") == 2
    listed = tvault(repo, "log").stdout
    assert c.id[:10] in listed and a.id[:10] not in listed and b.id[:10] not in listed
    assert names.aliases(open_repo(str(repo)), "m") == {}  # prod pointed at a removed entry
    gone = tvault(repo, "show", "m@prod", check=False)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr
    git(repo, "fsck", "--no-progress")
