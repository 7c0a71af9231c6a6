"""The note blob every log_all on a commit rewrites: written as git writes loose objects, fast, and
not re-read on the next log_all (bench/bench_log_growth.py measures the time; these check the bytes)."""

from __future__ import annotations

import os
import stat
import subprocess
import zlib
from pathlib import Path

import pygit2
import pytest
import torch

import tvault_git as tv
from tests.helpers import GIT_ENV, git, import_fresh
from tvault_git.gitutil import loose
from tvault_git.registry import notes
from tvault_git.spec.format import REF_PREFIX


def _gitb(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    """The real git CLI with bytes in and out (blob contents are not text)."""
    p = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, env={**os.environ, **GIT_ENV})
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def _loose_path(repo: Path, oid: pygit2.Oid | str) -> Path:
    h = str(oid)
    return repo / ".git" / "objects" / h[:2] / h[2:]


@pytest.mark.parametrize("size", [0, 1, 300, loose.PIECE - 1, loose.PIECE, loose.PIECE + 1, 3 * loose.PIECE + 17])
def test_blob_is_what_git_writes(tmp_path, size):
    git(tmp_path, "init", "-q", "r")
    repo = tmp_path / "r"
    data = bytes((i * 7 + i // 13) % 251 for i in range(size))
    oid = loose.write_blob(pygit2.Repository(str(repo)), data)
    assert str(oid) == _gitb(repo, "hash-object", "--stdin", input=data).decode().strip()
    assert _gitb(repo, "cat-file", "blob", str(oid)) == data
    assert git(repo, "cat-file", "-t", str(oid)).stdout.strip() == "blob"
    git(repo, "fsck", "--full", "--strict", "--no-dangling")  # check=True: no error
    assert stat.S_IMODE(_loose_path(repo, oid).stat().st_mode) & 0o222 == 0  # read-only, like git's
    assert not [p for p in (repo / ".git" / "objects").iterdir() if p.name.startswith("tmp_")]


def test_a_growing_text_reuses_its_whole_pieces(tmp_path, monkeypatch):
    """Appending a line deflates only the new tail: the whole pieces before it are reused, and the
    object git reads is exactly the text."""
    git(tmp_path, "init", "-q", "r")
    repo = tmp_path / "r"
    r = pygit2.Repository(str(repo))
    text = b"".join(b"model %d %040x grow result=0.%d\n" % (i, i * 7919, i) for i in range(2000))
    loose.write_blob(r, text)
    calls: list[int] = []
    real = loose._deflate

    def counting(data, final, level=loose.LEVEL):
        calls.append(len(data))
        return real(data, final, level)

    monkeypatch.setattr(loose, "_deflate", counting)
    for i in range(3):
        text += b"model %d %040x grow result=0.5\n" % (5000 + i, i)
        oid = loose.write_blob(r, text)
        assert _gitb(repo, "cat-file", "blob", str(oid)) == text
        assert zlib.decompress(_loose_path(repo, oid).read_bytes()) == b"blob %d\0" % len(text) + text
    # per write: the object header and the tail (< one piece), never the pieces before it
    assert all(n <= loose.PIECE for n in calls) and len(calls) <= 3 * 2 + 1
    git(repo, "fsck", "--full", "--strict", "--no-dangling")


def test_an_object_already_there_is_freshened_not_rewritten(tmp_path):
    git(tmp_path, "init", "-q", "r")
    repo = tmp_path / "r"
    r = pygit2.Repository(str(repo))
    oid = loose.write_blob(r, b"same bytes\n")
    path = _loose_path(repo, oid)
    os.utime(path, (1_000_000, 1_000_000))
    before = path.stat().st_ino
    assert loose.write_blob(r, b"same bytes\n") == oid
    assert path.stat().st_mtime > 1_000_000  # a prune that runs next does not take it for old
    assert path.stat().st_ino == before


def test_a_prune_removing_the_fanout_directory_meanwhile(tmp_path, monkeypatch):
    """``git prune`` rmdirs empty ``objects/xx`` directories: one taken between our mkdir and link
    is made again."""
    git(tmp_path, "init", "-q", "r")
    repo = tmp_path / "r"
    real_link = os.link
    pruned: list[str] = []

    def link_after_prune(src, dst, *a, **k):
        if not pruned:
            fan = os.path.dirname(dst)
            os.rmdir(fan)  # what git prune does to an empty fan-out directory
            pruned.append(fan)
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(loose.os, "link", link_after_prune)
    data = b"written while git prune ran\n"
    oid = loose.write_blob(pygit2.Repository(str(repo)), data)
    assert pruned and _gitb(repo, "cat-file", "blob", str(oid)) == data


def test_shared_repository_objects_stay_group_readable(tmp_path):
    git(tmp_path, "init", "-q", "--shared=group", "r")
    repo = tmp_path / "r"
    r = pygit2.Repository(str(repo))
    from tvault_git.gitutil.repo import shared_umask

    with shared_umask(r):
        oid = loose.write_blob(r, b"a teammate reads this\n")
    mode = _loose_path(repo, oid).stat().st_mode
    fan = _loose_path(repo, oid).parent.stat().st_mode
    assert mode & stat.S_IRGRP and fan & stat.S_IWGRP and fan & stat.S_IXGRP


class _Counting:
    """A stand-in for notes._MODEL_LINE_RE that counts whole-note scans."""

    def __init__(self, pat):
        self.pat, self.scans = pat, 0

    def findall(self, text):
        self.scans += 1
        return self.pat.findall(text)

    def __getattr__(self, name):
        return getattr(self.pat, name)


def test_log_all_does_not_rescan_its_commits_note(repo, monkeypatch):
    """The note written by one log_all is not scanned again by the next on the same commit (its line
    index follows from the one before); a note changed by someone else is read afresh."""
    torch.manual_seed(0)
    Net = import_fresh("model").Net
    tv.log_all(Net(), name="grow", result=0.1)  # the first note on the commit
    counter = _Counting(notes._MODEL_LINE_RE)
    monkeypatch.setattr(notes, "_MODEL_LINE_RE", counter)
    made = [tv.log_all(Net(), name="grow", result=0.2 + i / 10) for i in range(4)]
    assert counter.scans == 0
    shown = git(repo, "log", "--notes=tvault", "-1").stdout
    assert all(f"grow@{i + 2} " in shown for i in range(4)) and all(e.id[:10] in shown for e in made)
    # another writer (plain git here) appends a line with a higher seq: it is seen, not the memory
    other = "f" * 40
    git(repo, "notes", "--ref=tvault", "append", "-m", f"model 41 {other} grow result=0.9", "HEAD")
    e = tv.log_all(Net(), name="grow", result=0.3)
    lines = notes.read(pygit2.Repository(str(repo)), str(pygit2.Repository(str(repo)).head.target))
    assert [n.seq for n in lines][-2:] == [41, 42] and lines[-1].entry == e.id
    assert f"grow@7 result 0.3 entry {e.id[:10]}" in git(repo, "log", "--notes=tvault", "-1").stdout
    git(repo, "fsck", "--full", "--strict", "--no-dangling")


def test_a_note_at_the_largest_seq_refuses_instead_of_hiding_the_entry(repo):
    """A pulled line with seq 999999999999999999 leaves no seq for a new line (19 digits are not an
    entry line): log_all says so and indexes nothing, rather than writing a line readers skip."""
    torch.manual_seed(0)
    Net = import_fresh("model").Net
    first = tv.log_all(Net(), name="grow", result=0.1)
    git(repo, "notes", "--ref=tvault", "append", "-m", f"model 999999999999999999 {'e' * 40} x result=-", "HEAD")
    before = git(repo, "rev-parse", "refs/notes/tvault").stdout
    with pytest.raises(tv.TvaultError, match="largest seq"):
        tv.log_all(Net(), name="grow", result=0.2)
    assert git(repo, "rev-parse", "refs/notes/tvault").stdout == before
    lines = notes.read(pygit2.Repository(str(repo)), git(repo, "rev-parse", "HEAD").stdout.strip())
    assert [n.entry for n in lines] == [first.id, "e" * 40]
    entry_refs = [
        ln
        for ln in git(repo, "for-each-ref", "--format=%(refname)", "refs/tvault/").stdout.split()
        if len(ln.rsplit("/", 1)[-1]) == 40
    ]
    assert entry_refs == [f"{REF_PREFIX}{first.id}"]  # no entry ref without its line
