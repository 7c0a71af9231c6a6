"""Issue 13 at scale: batched pushes a size-limited host accepts, push --prune, cheap pulls, log_all growth.

Real parts: bare remotes with a pre-receive hook that refuses big packs, three clones, ``git
daemon`` with byte counting through GIT_TRACE_PACKET, ``git fsck`` everywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
import torch

import tvault_git as tv
from tests.helpers import git, import_fresh, init_repo, tvault, write
from tvault_git.registry import notes
from tvault_git.share import sync as remotes


def test_log_all_does_not_reparse_a_growing_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """log_all slowed 4x over 2,000 entries on one commit: one more entry must not parse the whole
    note (nor every note naming the model), so the lines parsed per log_all stay flat as it grows."""
    from tvault_git.registry import notes as notes_mod

    repo = init_repo(tmp_path / "proj")
    sys.path.insert(0, str(repo))
    try:
        net = import_fresh("model").Net()
        parsed: list[int] = []
        real = notes_mod.parse

        def counting(text: str):
            parsed.append(text.count("\n"))
            return real(text)

        monkeypatch.setattr(notes_mod, "parse", counting)
        per_log = []
        for i in range(40):
            parsed.clear()
            tv.log_all(net, result=i / 40, name="grow", repo=str(repo))
            per_log.append(sum(parsed))
        assert max(per_log[-10:]) <= max(per_log[:10]) + 2, per_log
    finally:
        sys.path.remove(str(repo))
        sys.modules.pop("model", None)


# --- helpers -------------------------------------------------------------------

WIDE_SRC = """
import torch.nn as nn


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(160, 160)  # 100 KiB of weights: a few entries make a pack over a small limit
"""


def R(p: Path) -> pygit2.Repository:
    return pygit2.Repository(str(p))


def project(tmp_path: Path, bare: Path, n: int) -> list[Path]:
    """A project with a ``Wide`` model pushed to ``bare`` and cloned by ``n`` teammates."""
    src = init_repo(tmp_path / "seed")
    write(src / "wide.py", WIDE_SRC)
    git(src, "add", "wide.py")
    git(src, "commit", "-qm", "wide model")
    git(src, "push", "-q", str(bare), "main")
    team = []
    for i in range(n):
        c = tmp_path / f"mate{i}"
        git(tmp_path, "clone", "-q", str(bare), str(c))
        git(c, "config", "user.name", f"Mate {i}")
        git(c, "config", "user.email", f"mate{i}@example.com")
        team.append(c)
    return team


def log_wide(clone: Path, k: int, name: str = "wide") -> str:
    """An entry of new (unique) weights in ``clone``."""
    sys.path.insert(0, str(clone))
    try:
        net = import_fresh("wide").Wide()
        torch.manual_seed(1000 + k)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn_like(p))
        return tv.log_all(net, result=k / 100, name=name, repo=str(clone)).id
    finally:
        sys.path.remove(str(clone))
        sys.modules.pop("wide", None)


def visible(p: Path) -> set[str]:
    return {n.entry for _, lines in notes.walk(R(p)) for n in lines if not n.removed}


def entry_refs(p: Path) -> set[str]:
    out = git(p, "for-each-ref", "--format=%(refname)", "refs/tvault/entries/").stdout.split()
    return {r.rsplit("/", 1)[1] for r in out}


def fsck(p: Path) -> None:
    out = git(p, "fsck", "--strict", "--no-dangling")
    assert "error" not in out.stderr.lower() and "missing" not in out.stderr.lower(), out.stderr


HOOK = """#!/bin/sh
# a host that refuses big pushes: measure the incoming pack (kept whole: receive.unpackLimit=1)
size=0
for f in "$GIT_QUARANTINE_PATH"/objects/pack/*.pack "$GIT_QUARANTINE_PATH"/pack/*.pack; do
  [ -f "$f" ] && size=$((size + $(wc -c < "$f")))
done
here=$(cd "$(dirname "$0")/.." && pwd)
echo "$size" >> "$here/push-sizes"
n=$(wc -l < "$here/push-sizes")
if [ -f "$here/fail-at" ] && [ "$n" -eq "$(cat "$here/fail-at")" ]; then
  rm "$here/fail-at"; echo "injected failure (push $n)" >&2; exit 1
fi
if [ "$size" -gt {limit} ]; then echo "push of $size bytes is over this host's {limit} byte limit" >&2; exit 1; fi
"""


def limited_bare(tmp_path: Path, limit: int) -> Path:
    bare = tmp_path / "host.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(bare, "config", "receive.unpackLimit", "1")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(HOOK.replace("{limit}", str(limit)))
    hook.chmod(0o755)
    return bare


def sizes(bare: Path) -> list[int]:
    f = bare / "push-sizes"
    return [int(x) for x in f.read_text().split()] if f.exists() else []


# --- batched push ----------------------------------------------------------------


def test_batched_push_fits_a_host_limit_and_resumes(tmp_path: Path) -> None:
    limit = 350_000
    bare = limited_bare(tmp_path, limit)
    a, b = project(tmp_path, bare, 2)
    ids = [log_wide(a, k) for k in range(8)]  # ~820 KB of unique weights
    # one push of everything is refused by the host, with one line and exit 6
    p = tvault(a, "push", check=False, env={"GIT_CONFIG_PARAMETERS": ""})
    assert p.returncode == 6 and "rejected" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert entry_refs(bare) == set()
    # batches under the limit: each push is accepted; one failure is injected at the second one
    git(a, "config", "tvault.maxPushBytes", "250k")
    (bare / "fail-at").write_text(str(len(sizes(bare)) + 2) + "\n")
    p = tvault(a, "push", check=False)
    assert p.returncode == 6 and "injected failure" in p.stderr, p.stderr
    assert "batch 1/" in p.stderr
    first = entry_refs(bare)
    assert first and first < set(ids)  # the first batch landed, the rest did not
    assert "refs/notes/tvault" not in git(bare, "for-each-ref").stdout  # the index goes last
    n_before = len(sizes(bare))
    p = tvault(a, "push")  # the rerun sends only what the host lacks
    assert "pushed to origin" in p.stdout
    assert entry_refs(bare) == set(ids)
    rerun = sizes(bare)[n_before:]
    assert all(s <= limit for s in rerun) and len(rerun) >= 2, rerun
    # nothing of the first batch travelled again: the rerun's packs hold the other entries only
    assert sum(rerun) < 102_400 * (len(ids) - len(first)) * 1.15, (rerun, len(first))
    fsck(bare)
    # a teammate pulls every entry bit-exact
    remotes.pull(R(b))
    assert visible(b) == set(ids)
    for e in ids:
        sa, sb = tv.load(e, repo=str(a)), tv.load(e, repo=str(b))
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    fsck(b)


def test_max_bytes_option_and_bad_sizes(tmp_path: Path) -> None:
    bare = limited_bare(tmp_path, 250_000)
    (a,) = project(tmp_path, bare, 1)
    ids = [log_wide(a, k) for k in range(3)]
    p = tvault(a, "push", "--max-bytes", "150k")
    assert "batch 3/3" in p.stderr and "in 3 batches" in p.stdout, (p.stdout, p.stderr)
    assert entry_refs(bare) == set(ids)
    bad = tvault(a, "push", "--max-bytes", "lots", check=False)
    assert bad.returncode == 2 and "bad size" in bad.stderr and "Traceback" not in bad.stderr
    git(a, "config", "tvault.maxPushBytes", "-5")
    bad = tvault(a, "push", check=False)
    assert bad.returncode == 2 and "tvault.maxPushBytes" in bad.stderr, bad.stderr


# --- push --prune ------------------------------------------------------------------


def test_removals_travel_only_with_push_prune(tmp_path: Path) -> None:
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    a, b, c = project(tmp_path, bare, 3)
    gone, kept = log_wide(a, 1), log_wide(a, 2)
    remotes.push(R(a))
    remotes.pull(R(b))
    remotes.pull(R(c))
    assert visible(b) == visible(c) == {gone, kept}
    tvault(a, "rm", "--yes", gone)
    assert visible(a) == {kept}
    # a plain push neither deletes nor hides anything for teammates
    tvault(a, "push")
    assert gone in entry_refs(bare)
    remotes.pull(R(b))
    assert visible(b) == {gone, kept}
    # and the remover's own pull does not bring it back (no line, no ref)
    remotes.pull(R(a))
    assert visible(a) == {kept} and gone not in entry_refs(a)
    # a teammate logs concurrently, before the prune, and does not push yet
    fresh_c = log_wide(c, 3)
    p = tvault(a, "push", "--prune")
    assert "pruned 1 removed entry" in p.stdout, p.stdout
    assert gone not in entry_refs(bare) and kept in entry_refs(bare)
    # b pulls: the removal is merged (the entry is hidden), the rest stays
    remotes.pull(R(b))
    assert visible(b) == {kept}
    remotes.push(R(b))  # b still has the entry's ref: its push must not bring it back
    assert gone not in entry_refs(bare)
    # c, who never saw the removal, pushes its new entry: nothing of c's is lost, the removal holds
    remotes.push(R(c))
    assert visible(c) == {kept, fresh_c}
    assert gone not in entry_refs(bare)
    remotes.pull(R(a))
    assert visible(a) == {kept, fresh_c} and gone not in entry_refs(a)
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(bare), str(fresh))
    remotes.pull(R(fresh))
    assert visible(fresh) == {kept, fresh_c} and entry_refs(fresh) == {kept, fresh_c}
    for r in (bare, a, b, c, fresh):
        fsck(r)


# --- cheap pulls -----------------------------------------------------------------------


def _advertised(trace: str) -> int:
    """Refs the remote advertised in a GIT_TRACE_PACKET trace (v0 and v2 ls-refs lines)."""
    return len(re.findall(r"upload-pack> [0-9a-f]{40} refs/tvault/entries/", trace))


def _pushed_30(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Teammates a and b of a shared bare repo; a logged 30 entries and pushed them."""
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    a, b = project(tmp_path, bare, 2)
    ids = [log_wide(a, k) for k in range(30)]
    remotes.push(R(a))
    return a, b, ids


@contextlib.contextmanager
def _packet_trace(trace: Path) -> Iterator[None]:
    """git's GIT_TRACE_PACKET into ``trace`` (emptied first) for the calls inside."""
    trace.unlink(missing_ok=True)
    os.environ["GIT_TRACE_PACKET"] = str(trace)
    try:
        yield
    finally:
        del os.environ["GIT_TRACE_PACKET"]


def test_noop_and_small_pulls_do_not_list_every_entry(tmp_path: Path) -> None:
    a, b, ids = _pushed_30(tmp_path)
    remotes.pull(R(b))
    assert visible(b) == set(ids)
    trace = tmp_path / "trace"

    def traced_pull() -> remotes.Transfer:
        with _packet_trace(trace):
            return remotes.pull(R(b))

    t = traced_pull()
    assert t.new_entries == [] and _advertised(trace.read_text()) == 0
    new = [log_wide(a, 100 + k) for k in range(2)]
    remotes.push(R(a))
    t = traced_pull()
    assert sorted(t.new_entries) == sorted(new) and _advertised(trace.read_text()) == len(new)
    fsck(b)


LAYERS_SRC = """
import torch.nn as nn


class Layers(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*[nn.Linear(64, 64) for _ in range(6)])  # 6 x 16.6 KB: one entry, many blobs
"""


def test_an_entry_bigger_than_the_limit_goes_in_parts(tmp_path: Path) -> None:
    limit = 45_000
    bare = limited_bare(tmp_path, limit)
    a, b = project(tmp_path, bare, 2)
    write(a / "layers.py", LAYERS_SRC)
    git(a, "add", "layers.py")
    git(a, "commit", "-qm", "layers")
    sys.path.insert(0, str(a))
    try:
        net = import_fresh("layers").Layers()
        big = tv.log_all(net, result=0.5, name="layers", repo=str(a)).id  # ~100 KB
    finally:
        sys.path.remove(str(a))
        sys.modules.pop("layers", None)
    git(a, "config", "tvault.maxPushBytes", "40k")
    p = tvault(a, "push", check=False)
    assert p.returncode == 0, p.stderr
    assert "part 1 of entry" in p.stderr, p.stderr
    assert all(s <= limit for s in sizes(bare)), sizes(bare)
    assert sum(sizes(bare)) < 130_000, sizes(bare)  # the entry's own push did not resend the parts' blobs
    assert entry_refs(bare) == {big}
    assert "refs/tvault/staging" not in git(bare, "for-each-ref").stdout  # the parts' refs are gone
    fsck(bare)
    remotes.pull(R(b))
    sa, sb = tv.load(big, repo=str(a)), tv.load(big, repo=str(b))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    fsck(b)


def test_pull_when_the_remote_lists_an_entry_it_lacks(tmp_path: Path) -> None:
    """An index line whose entry ref the remote does not have (a damaged remote): the rest arrives, one warning."""
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    a, b = project(tmp_path, bare, 2)
    lost, ok = log_wide(a, 1), log_wide(a, 2)
    remotes.push(R(a))
    git(bare, "update-ref", "-d", f"refs/tvault/entries/{lost}")
    p = tvault(b, "pull")
    assert "does not have" in p.stderr and lost[:10] in p.stderr, p.stderr
    assert entry_refs(b) == {ok}
    fsck(b)


def test_interop_with_remotes_and_clients_of_the_old_transfer(tmp_path: Path) -> None:
    """The stored layout is unchanged: a remote filled the way 1.0 clients pushed (every entry ref by
    pattern, notes, aliases) pulls as before, and what the new push writes reads with the old fetch."""
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    old, new = project(tmp_path, bare, 2)
    e1, e2 = log_wide(old, 1), log_wide(old, 2)
    tvault(old, "alias", "wide@1", "prod")
    git(
        old,
        "push",
        "-q",
        "origin",
        "refs/tvault/entries/*:refs/tvault/entries/*",
        "refs/notes/tvault",
        "refs/tvault/aliases",
    )
    remotes.pull(R(new))
    assert visible(new) == {e1, e2} and tvault(new, "show", "wide@prod").returncode == 0
    e3 = log_wide(new, 3)
    tvault(new, "rm", "--yes", e1)  # a local removal: the new push leaves it out, the old fetch sees no change
    remotes.push(R(new))
    git(old, "fetch", "-q", "origin", "refs/tvault/*:refs/tvault/*", "+refs/notes/tvault:refs/tvault-remote/o/notes")
    assert notes.merge(R(old), R(old).references["refs/tvault-remote/o/notes"].target)
    assert visible(old) == {e1, e2, e3}
    for r in (bare, old, new):
        fsck(r)


def test_an_entry_removed_before_its_first_push_is_not_published(tmp_path: Path) -> None:
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    a, b = project(tmp_path, bare, 2)
    kept, never = log_wide(a, 1), log_wide(a, 2)
    tvault(a, "rm", "--yes", never)
    tvault(a, "push")
    p = tvault(b, "pull")
    assert "warning" not in p.stderr, p.stderr  # the remote does not list an entry it lacks
    assert visible(b) == {kept} and entry_refs(bare) == {kept}
    assert never not in git(bare, "notes", "--ref=tvault", "list").stdout + _note_texts(bare)
    tvault(a, "push", "--prune")  # now the lines travel: listed as removed, never visible
    remotes.pull(R(b))
    assert visible(b) == {kept} and entry_refs(bare) == {kept}
    fsck(bare)


def _note_texts(repo: Path) -> str:
    return "".join(
        git(repo, "notes", "--ref=tvault", "show", c).stdout
        for c in (line.split()[1] for line in git(repo, "notes", "--ref=tvault", "list").stdout.splitlines())
    )


def test_fetching_one_entry_does_not_list_every_entry(tmp_path: Path) -> None:
    """``git tvault fetch REMOTE REF`` asks for the index and that one entry ref, not all of them."""
    _, b, ids = _pushed_30(tmp_path)
    remotes.fetch_one(R(b), "origin", ids[3])  # b has one entry of a's: a common one for the edge hint
    trace = tmp_path / "trace"
    with _packet_trace(trace):
        got = remotes.fetch_one(R(b), "origin", "wide@20")  # by name: read from the remote's index
        by_id = remotes.fetch_one(R(b), "origin", ids[25][:12])  # by id prefix, too
    assert got.id == ids[19] and by_id.id == ids[25]
    assert _advertised(trace.read_text()) <= 2 * 2, _advertised(trace.read_text())  # was 3 x 30
    assert visible(b) == {ids[3], ids[19], ids[25]}
    with pytest.raises(remotes.RefNotFound):
        remotes.fetch_one(R(b), "origin", "f" * 12)
    fsck(b)


def test_fetching_one_entry_from_a_remote_without_it(tmp_path: Path) -> None:
    """No registry there, or an index that lists an entry whose ref it lacks: one clear error each."""
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    a, b = project(tmp_path, bare, 2)
    with pytest.raises(remotes.RefNotFound, match="has no tvault registry"):
        remotes.fetch_one(R(b), "origin", "wide@1")
    e = log_wide(a, 1)
    git(a, "push", "-q", "origin", "refs/notes/tvault")  # the index without the entry's ref
    with pytest.raises(remotes.RefNotFound, match="does not have its objects"):
        remotes.fetch_one(R(b), "origin", e[:10])
    assert visible(b) == set()
    fsck(b)
