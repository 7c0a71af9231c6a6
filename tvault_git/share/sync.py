"""Sharing a registry over ordinary git remotes: fetch, pull, push, and fetching one entry.

Transport is the real ``git`` CLI, so ssh keys, credential helpers, proxies,
``insteadOf`` and progress behave exactly as for ``git fetch``/``git push``;
tvault-git stores no secrets. What git cannot do for us is merge our two
mutable refs, so:

- entry refs (``refs/tvault/entries/<id>``) are immutable and copied with
  non-forced refspecs;
- the remote's notes and aliases land in private tracking refs
  ``refs/tvault-remote/<remote>/{notes,aliases}`` (forced: they only mirror the
  remote) and are merged into ours by union (notes.merge, names.merge_alias_ref);
- push first pulls, then pushes non-forced; a push that loses a race is
  retried after another pull. Nothing is ever discarded on either side.

Torch-free.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pygit2

from tvault_git.errors import CorruptEntry, InvalidInput, RefNotFound, RemoteError
from tvault_git.gitutil.repo import common_dir, git_env, open_repo_like, signature
from tvault_git.registry import entries, names, notes
from tvault_git.spec.format import ALIASES_REF, HEX40, NOTES_REF, REF_PREFIX
from tvault_git.spec.refs import ID_PREFIX_RE, EntryRef

TRACK_PREFIX = "refs/tvault-remote/"
ENTRY_SPEC = f"{REF_PREFIX}*:{REF_PREFIX}*"
_PUSH_RETRIES = 5
V2 = ["-c", "protocol.version=2"]
EXPLICIT_MAX = 256  # a pull wanting more entries than this asks for all entry refs by pattern instead
NEIGHBOURS_MAX = 64  # local entries offered as common ("have") to a fetch: enough to find shared tensors
DEFAULT_MAX_PUSH = 3 << 29  # 1.5 GiB: GitHub refuses a push over 2 GiB


@dataclass
class Transfer:
    """What one command did (for messages, tests and the bench)."""

    remote: str
    new_entries: list[str] = field(default_factory=list)
    notes_merged: bool = False
    aliases_merged: bool = False
    pushed: bool = False
    stderr: str = ""
    remote_ids: set[str] = field(default_factory=set, repr=False)  # entry ids the remote had
    warnings: list[str] = field(default_factory=list)  # what was left out (odd refs), one line each
    batches: int = 0  # pushes of entries (push: tvault.maxPushBytes each)
    pruned: list[str] = field(default_factory=list)  # entries whose refs push --prune deleted on the remote


def git_dir_cwd(repo: pygit2.Repository) -> str:
    return repo.workdir or repo.path


def default_remote(repo: pygit2.Repository) -> str:
    """The current branch's remote, else ``origin`` (what ``git push`` would pick)."""
    try:
        if not repo.head_is_detached and not repo.head_is_unborn:
            name = repo.config[f"branch.{repo.head.shorthand}.remote"]
            if name and name != ".":
                return name
    except (KeyError, pygit2.GitError):
        pass
    return "origin"


def track_key(repo: pygit2.Repository, remote: str) -> str:
    """A ref-safe name for the remote: its name when configured, else a digest of the URL or path."""
    try:
        if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", remote) and repo.config[f"remote.{remote}.url"]:
            return remote
    except (KeyError, pygit2.GitError):
        pass
    return "url-" + hashlib.sha1(remote.encode()).hexdigest()[:12]


def tracking_refs(repo: pygit2.Repository, remote: str) -> tuple[str, str]:
    key = track_key(repo, remote)
    return f"{TRACK_PREFIX}{key}/notes", f"{TRACK_PREFIX}{key}/aliases"


def _classify(remote: str, op: str, err: str) -> RemoteError:
    """One clear line for what went wrong, from git's own messages."""
    low = err.lower()
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    detail = next(
        (ln for ln in lines if ln.startswith(("fatal:", "error:", "! ["))), lines[-1] if lines else "no message"
    )
    if any(
        s in low
        for s in (
            "does not appear to be a git repository",
            "not a git repository",
            "repository not found",
            "not found: did you run git update-server-info",
            "not exported",
            "is this a git repository",
        )
    ) or re.search(r"repository '.*' not found", low):
        return RemoteError(f"{remote} is not a git repository (or not shared there): {detail}", remote=remote)
    if any(
        s in low
        for s in (
            "could not resolve host",
            "connection refused",
            "unable to connect",
            "failed to connect",
            "could not read from remote repository",
            "connection timed out",
            "network is unreachable",
            "no route to host",
            "unable to access",
            "couldn't connect",
        )
    ):
        return RemoteError(f"cannot reach {remote}: {detail}", remote=remote)
    if any(
        s in low
        for s in (
            "permission denied",
            "hook declined",
            "remote rejected",
            "denied",
            "403",
            "401",
            "authentication failed",
            "read-only",
        )
    ):
        said = next((ln[7:].strip() for ln in lines if ln.startswith("remote:") and ln[7:].strip()), None)
        why = f"; it said: {said}" if said else ""  # a host's own reason (a size limit, a protected ref)
        return RemoteError(
            f"{remote} rejected the {op} (permissions or a server-side rule): {detail}{why}", remote=remote
        )
    return RemoteError(f"git {op} {remote} failed: {detail}", remote=remote)


def run_git(repo: pygit2.Repository, args: list[str], remote: str, op: str, progress: bool | None = None) -> str:
    """Run ``git <args>`` in the repo; stream its progress to a terminal; return stderr; RemoteError on failure."""
    if progress is None:
        progress = sys.stderr.isatty()
    cmd = ["git", *V2, *args]  # v2: a fetch asks only for the refs its refspecs name (ref prefixes)
    if progress and args and args[0] in ("fetch", "push"):
        cmd.insert(len(V2) + 2, "--progress")
    env = git_env(repo)
    if not sys.stdin.isatty():  # no one to answer a password prompt: fail instead of hanging
        env.setdefault("GIT_TERMINAL_PROMPT", "0")
    try:
        p = subprocess.Popen(cmd, cwd=git_dir_cwd(repo), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as e:
        raise RemoteError(f"cannot run git: {e}") from None
    chunks: list[bytes] = []
    assert p.stderr is not None
    while True:
        b = p.stderr.read1(65536) if hasattr(p.stderr, "read1") else p.stderr.read(65536)
        if not b:
            break
        chunks.append(b)
        if progress:
            sys.stderr.buffer.write(b)
            sys.stderr.buffer.flush()
    p.wait()
    if p.stdout is not None:
        p.stdout.close()
    err = b"".join(chunks).decode("utf-8", "replace")
    if p.returncode != 0:
        raise _classify(remote, op, err)
    return err


def ls_remote(repo: pygit2.Repository, remote: str, patterns: list[str]) -> dict[str, str]:
    """ref -> object id on the remote, for refs matching ``patterns``; checks that it is reachable."""
    p = subprocess.run(
        ["git", *V2, "ls-remote", remote, *patterns],
        cwd=git_dir_cwd(repo),
        capture_output=True,
        text=True,
        env=git_env(repo, {"GIT_TERMINAL_PROMPT": "0"}),
    )
    if p.returncode != 0:
        if (
            re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", remote)
            and track_key(repo, remote) != remote
            and not os.path.exists(remote)
        ):
            raise RemoteError(
                f"no remote named {remote!r} (see 'git remote -v'; add one with 'git remote add {remote} URL')"
            )
        raise _classify(remote, "fetch", p.stderr)
    out: dict[str, str] = {}
    for line in p.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref:
            out[ref] = sha
    return out


def _entry_ids(refs: Iterable[str]) -> set[str]:
    """Entry ids named by ``refs/tvault/entries/<id>`` refs; other names (``-rf``) are not entries."""
    return {r[len(REF_PREFIX) :] for r in refs if r.startswith(REF_PREFIX) and HEX40.match(r[len(REF_PREFIX) :])}


def _local_entry_ids(repo: pygit2.Repository) -> set[str]:
    return _entry_ids(repo.references)


@contextlib.contextmanager
def edge_hint(repo: pygit2.Repository, common: Iterable[str]) -> Iterator[None]:
    """Make git send only the tensors the other side lacks, for the length of one transfer.

    Entries are parentless commits, so git's pack negotiation marks as
    uninteresting only the trees of *edge* commits (parents of what is sent):
    a new version that shares 3 of 4 layers with one the other side has would
    resend all 4. When the client is shallow, git instead marks the whole tree
    of every common commit (``--objects-edge-aggressive``), and the shared
    tensors are skipped. A shallow graft on a commit that has no parents
    changes nothing else, so we list one common parentless entry commit in
    ``.git/shallow`` during the transfer and remove it after. A repository
    that is already shallow is left alone (it gets this behaviour anyway).
    ``TVAULT_NO_EDGE_HINT=1`` turns this off (to measure what it saves: bench/bench_share.py).
    """

    path = os.path.join(common_dir(repo), "shallow")
    _drop_stale_marker(repo, path)
    marker = next(
        (
            c
            for c in sorted(common)
            if (o := repo.get(c)) is not None and o.type == pygit2.enums.ObjectType.COMMIT and not o.parent_ids
        ),
        None,
    )
    if marker is None or os.path.exists(path) or os.environ.get("TVAULT_NO_EDGE_HINT"):
        yield
        return
    tmp = f"{path}.tvault-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(marker + "\n")
    try:
        os.link(tmp, path)  # fails if git created one meanwhile: then leave it alone
    except OSError:
        os.unlink(tmp)
        yield
        return
    os.unlink(tmp)
    try:
        yield
    finally:
        try:
            with open(path) as f:
                mine = f.read() == marker + "\n"
            if mine:
                os.unlink(path)
        except OSError:
            pass


def _drop_stale_marker(repo: pygit2.Repository, path: str) -> None:
    """Remove a marker left by a transfer that was killed: one line naming a parentless entry commit."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return
    line = text.strip()
    if text != line + "\n" or REF_PREFIX + line not in repo.references:
        return
    o = repo.get(line)
    if o is not None and o.type == pygit2.enums.ObjectType.COMMIT and not o.parent_ids:
        try:
            os.unlink(path)
        except OSError:
            pass


def _commit_ref(repo: pygit2.Repository, ref: str) -> pygit2.Commit | None:
    """The commit ``ref`` points at; None when it is missing or at something else (a hostile remote's blob)."""
    try:
        r = repo.references.get(ref)
        o = None if r is None else repo.get(r.target)
    except (pygit2.GitError, ValueError):
        return None
    return o if isinstance(o, pygit2.Commit) else None


def _no_such_remote(repo: pygit2.Repository, remote: str, err: RemoteError) -> RemoteError:
    """A bare word that names no configured remote and no directory: say so, not git's 'not a repository'."""
    if (
        re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", remote)
        and track_key(repo, remote) != remote
        and not os.path.exists(os.path.join(git_dir_cwd(repo), remote))
    ):
        return RemoteError(
            f"no remote named {remote!r} (see 'git remote -v'; add one with 'git remote add {remote} URL')"
        )
    return err


def _fetch_index(repo: pygit2.Repository, remote: str, progress: bool | None, with_notes: bool = True) -> str:
    """The remote's notes and aliases into our tracking refs, asking for those two refs only.

    Patterns (``refs/notes/tvault*``) so that a registry without aliases is no error; under
    protocol v2 they are ref prefixes, so the remote advertises two refs, not one per entry
    (``git ls-remote`` with patterns lists them all: 300 KiB at 2,000 entries).
    Negotiation starts from our copies of those histories only (not from every entry ref).
    ``with_notes=False``: the aliases alone (a single-entry fetch reads only the notes' tip).
    """
    t_notes, t_aliases = tracking_refs(repo, remote)
    ours = (t_notes, t_aliases, NOTES_REF, ALIASES_REF) if with_notes else (t_aliases, ALIASES_REF)
    tips = [f"--negotiation-tip={r}" for r in ours if _commit_ref(repo, r)]
    specs = [f"+{NOTES_REF}*:{t_notes}*"] if with_notes else []
    specs.append(f"+{ALIASES_REF}*:{t_aliases}*")
    try:
        err = run_git(
            repo, ["fetch", "--no-tags", "--no-write-fetch-head", *tips, remote, *specs], remote, "fetch", progress
        )
    except RemoteError as e:
        raise _no_such_remote(repo, remote, e) from None
    base = t_notes.rsplit("/", 1)[0] + "/"
    for name in [r for r in repo.references if r.startswith(base) and r not in (t_notes, t_aliases)]:
        repo.references.delete(name)  # refs/notes/tvault-other matched the pattern: not ours to mirror
    return err


def listed(repo: pygit2.Repository, ref: str = NOTES_REF) -> tuple[set[str], set[str]]:
    """(entries a notes ref lists as visible, entries it marks removed) anywhere in it."""
    shown: set[str] = set()
    gone: set[str] = set()
    try:
        for _, lines in notes.walk(repo, ref):
            for n in lines:
                (gone if n.removed else shown).add(n.entry)
    except CorruptEntry:  # a remote's notes ref at a blob: merge_tracking says so
        pass
    return shown - gone, gone


def _neighbours(repo: pygit2.Repository, remote_notes: str, want: set[str], there: set[str]) -> list[str]:
    """Local entries most likely to share tensors with ``want``: same model name or training commit, newest first.

    Offered as common commits (``--negotiation-tip``), so the edge hint can skip what they share,
    without sending (and getting an ACK for) every entry we have.
    """
    names_: set[str] = set()
    commits: set[str] = set()
    for c, lines in notes.walk(repo, remote_notes):
        for n in lines:
            if n.entry in want:
                commits.add(c)
                if n.name:
                    names_.add(n.name)
    local = _local_entry_ids(repo)
    score: dict[str, str] = {}
    for c, lines in notes.walk(repo):
        for n in lines:
            if n.removed or n.entry in want or n.entry not in local or n.entry not in there:
                continue
            if c in commits or (n.name is not None and n.name in names_):
                score[n.entry] = max(score.get(n.entry, ""), n.created or "")
    return sorted(score, key=lambda e: (score[e], e), reverse=True)[:NEIGHBOURS_MAX]


def _fetch_entries(
    repo: pygit2.Repository, remote: str, want: list[str], skip: set[str], progress: bool | None, t: Transfer
) -> str:
    """Fetch the entry refs ``want`` (by name; by pattern when there are many); ``skip``: never fetched."""
    fetch_ = ["fetch", "--no-tags", "--no-write-fetch-head"]
    if len(want) > EXPLICIT_MAX:  # a big pull: one advertisement of all entry refs costs little beside it
        have = ls_remote(repo, remote, [REF_PREFIX + "*"])
        ids = _entry_ids(have)
        odd = sorted(r for r in have if r.startswith(REF_PREFIX) and r[len(REF_PREFIX) :] not in ids)
        t.warnings += [f"left out {r}: not an entry id" for r in odd[:3]] + (
            [f"and {len(odd) - 3} more odd refs"] if len(odd) > 3 else []
        )
        specs = [ENTRY_SPEC] + [f"^{r}" for r in odd] + [f"^{REF_PREFIX}{i}" for i in sorted(skip & ids)]
        with edge_hint(repo, ids & _local_entry_ids(repo)):  # negative refspecs: git >= 2.29
            return run_git(repo, [*fetch_, remote, *specs], remote, "fetch", progress)
    t_notes = tracking_refs(repo, remote)[0]
    near = _neighbours(repo, t_notes, set(want), t.remote_ids)
    # the remote index's tip first: one ACK for it ends the negotiation of that history at once
    tips = [f"--negotiation-tip={r}" for r in ([t_notes] if _commit_ref(repo, t_notes) else []) + near]
    for attempt in range(2):
        specs = [f"{REF_PREFIX}{i}:{REF_PREFIX}{i}" for i in want]
        try:
            with edge_hint(repo, near):
                return run_git(repo, [*fetch_, *tips, remote, *specs], remote, "fetch", progress)
        except RemoteError as e:
            if attempt or not _no_remote_ref(e):
                raise
        # the remote indexes entries whose refs it does not have: take the ones it has
        there = _entry_ids(ls_remote(repo, remote, [REF_PREFIX + "*"]))
        lost = [i for i in want if i not in there]
        t.warnings.append(
            f"{remote} lists {len(lost)} entr{'y' if len(lost) == 1 else 'ies'} it does not have "
            f"({', '.join(i[:10] for i in lost[:3])}); left out"
        )
        want = [i for i in want if i in there]
        if not want:
            return ""
    return ""  # pragma: no cover


def fetch(repo: pygit2.Repository, remote: str | None = None, progress: bool | None = None) -> Transfer:
    """Download the remote's index into tracking refs, then the entries it lists that we lack.

    Cheap at any size: the remote advertises its notes and aliases refs, and entry refs only by
    name (the ones its index lists and we do not have). Entries removed here (``git tvault rm``)
    are never fetched again; our own index is untouched (pull merges it).
    """
    remote = remote or default_remote(repo)
    t = Transfer(remote)
    t_notes, _ = tracking_refs(repo, remote)
    before = _local_entry_ids(repo)
    t.stderr = _fetch_index(repo, remote, progress)
    shown, _ = listed(repo, t_notes)
    _, removed_here = listed(repo, NOTES_REF)
    t.remote_ids = shown
    want = sorted(shown - before - removed_here)
    if want:
        t.stderr += _fetch_entries(repo, remote, want, removed_here, progress, t)
    t.new_entries = sorted(_local_entry_ids(repo) - before)
    return t


def merge_tracking(repo: pygit2.Repository, remote: str, t: Transfer) -> None:
    """Fold the fetched remote index and aliases into ours (union; never drops a line)."""
    t_notes, t_aliases = tracking_refs(repo, remote)
    for ref, fn, attr in ((t_notes, notes.merge, "notes_merged"), (t_aliases, names.merge_alias_ref, "aliases_merged")):
        r = repo.references.get(ref)
        if r is None:
            continue
        o = repo.get(r.target)
        if o is None or o.type != pygit2.enums.ObjectType.COMMIT:  # a remote's notes/aliases ref at a blob or tree
            t.warnings.append(f"{remote}'s {ref.rsplit('/', 1)[-1]} ref is not a commit; left out")
            r.delete()
            continue
        setattr(t, attr, fn(repo, r.target))


def pull(repo: pygit2.Repository, remote: str | None = None, progress: bool | None = None) -> Transfer:
    """fetch, then merge the remote's index and aliases into ours."""
    remote = remote or default_remote(repo)
    t = fetch(repo, remote, progress)
    merge_tracking(repo, remote, t)
    return t


def _no_remote_ref(err: RemoteError) -> bool:
    """git fetch found no such ref on the remote (git runs in the C locale: git_env)."""
    return "couldn't find remote ref" in str(err).lower()


def _race_lost(err: RemoteError) -> bool:
    s = str(err).lower()
    return any(
        k in s
        for k in (
            "fetch first",
            "non-fast-forward",
            "stale info",
            "failed to update ref",
            "cannot lock ref",
            "reference already exists",
        )
    )


def parse_size(text: str) -> int:
    """``1500m``, ``1g``, ``512k``, ``123456`` (bytes; k/m/g are powers of 1024, as in git config)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)(?:i?b)?\s*", text.lower())
    if m is None or float(m.group(1)) <= 0:
        raise InvalidInput(f"bad size {text!r}: give bytes, or a number with k, m or g (1500m, 1.5g)")
    return int(float(m.group(1)) * 1024 ** " kmg".index(m.group(2) or " "))


def max_push_bytes(repo: pygit2.Repository) -> int:
    """``git config tvault.maxPushBytes`` (k/m/g suffixes as git reads them), default 1.5 GiB."""
    try:
        text = str(repo.config["tvault.maxPushBytes"])
    except KeyError:
        return DEFAULT_MAX_PUSH
    except pygit2.GitError as e:
        raise InvalidInput(f"cannot read tvault.maxPushBytes: {e}") from None
    try:
        return parse_size(text)
    except InvalidInput:
        raise InvalidInput(
            f"tvault.maxPushBytes is {text!r}, not a size; fix it with 'git config tvault.maxPushBytes 1g'"
        ) from None


def mib(n: int) -> str:
    return f"{n / 1048576:,.0f} MiB" if n >= 1048576 else f"{n / 1024:,.1f} KiB"


@dataclass
class Batch:
    """Refs pushed together: every object they need that the remote lacks, under the size limit.

    ``staging``: (ref, commit) parts of one entry too big for a single push (see plan_batches);
    ``drop``: staging refs the push of the entry itself deletes on the remote.
    """

    ids: list[str]
    bytes: int
    staging: list[tuple[str, str]] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)

    def specs(self) -> list[str]:
        return _specs(self.ids) + [f"{c}:{r}" for r, c in self.staging] + [f":{r}" for r in self.drop]


STAGING_PREFIX = "refs/tvault/staging/"
_STAGING_SIG = pygit2.Signature("tvault-git", "tvault-git@localhost", 0, 0)  # fixed: a rerun makes the same parts


def _new_objects(
    repo: pygit2.Repository, tree: pygit2.Oid, seen: set[pygit2.Oid]
) -> list[tuple[pygit2.Oid, int, bool]]:
    """(id, size, is a blob) of the objects under ``tree`` not in ``seen`` (added to it): what a push sends."""
    out, stack = [], [tree]
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        try:
            kind, size = repo.odb.read_header(oid)
        except (KeyError, pygit2.GitError):
            continue
        out.append((oid, size, kind == pygit2.enums.ObjectType.BLOB))
        if kind == pygit2.enums.ObjectType.TREE:
            node = repo[oid]
            assert isinstance(node, pygit2.Tree)
            stack += [e.id for e in node if e.filemode != pygit2.enums.FileMode.COMMIT]
    return out


def _add_objects(repo: pygit2.Repository, tree: pygit2.Oid, seen: set[pygit2.Oid]) -> int:
    """Bytes of the objects under ``tree`` not in ``seen`` (added to it)."""
    return sum(size for _, size, _ in _new_objects(repo, tree, seen))


def _staging_parts(repo: pygit2.Repository, entry: str, blobs: list[tuple[pygit2.Oid, int]], limit: int) -> Batch:
    """An entry bigger than one push, as parts: parentless commits of its blobs, each under ``limit``.

    Pushed first to ``refs/tvault/staging/<entry>/<k>``, so the entry's own push then sends only
    its commit and trees (the edge hint treats the parts as common); that push deletes the parts'
    refs. The parts are made with a fixed identity and time, so a rerun after a failure makes the
    same commits and the ones already on the remote are not sent again.
    """
    groups: list[list[tuple[pygit2.Oid, int]]] = [[]]
    for oid, size in sorted(blobs, key=lambda b: str(b[0])):
        if groups[-1] and sum(s for _, s in groups[-1]) + size > limit:
            groups.append([])
        groups[-1].append((oid, size))
    parts = Batch([], 0)
    for k, g in enumerate(groups, 1):
        tb = repo.TreeBuilder()
        for oid, _ in g:
            tb.insert(str(oid), oid, pygit2.enums.FileMode.BLOB)
        msg = f"tvault: part {k} of {len(groups)} of entry {entry} (a push too big for one go)\n"
        c = repo.create_commit(None, _STAGING_SIG, _STAGING_SIG, msg, tb.write(), [])
        parts.staging.append((f"{STAGING_PREFIX}{entry}/{k}", str(c)))
        parts.bytes += sum(s for _, s in g)
    return parts


def plan_batches(repo: pygit2.Repository, todo: Iterable[str], common: Iterable[str], limit: int) -> list[Batch]:
    """Split the entries to push into batches under ``limit`` bytes, oldest first.

    A batch's size counts each object once and leaves out what the remote already has through
    ``common`` (tensors shared with its entries: the edge hint keeps them out of the pack). An
    entry bigger than the limit is pushed in parts (its blobs first, on staging refs, then the
    entry), each part under the limit; only a single blob over it (never: chunks are < 50 MB)
    would make a push over it.
    """
    seen: set[pygit2.Oid] = set()
    for cid in common:
        o = repo.get(cid)
        if isinstance(o, pygit2.Commit):
            _add_objects(repo, o.tree_id, seen)
    commits: list[pygit2.Commit] = []
    for i in todo:
        o = repo.get(i)
        if isinstance(o, pygit2.Commit):
            commits.append(o)
    out: list[Batch] = []
    for c in sorted(commits, key=lambda o: (o.commit_time, str(o.id))):
        i = str(c.id)
        objs = _new_objects(repo, c.tree_id, seen)
        size = sum(s for _, s, _ in objs) + len(c.read_raw())
        if size > limit:
            blobs = [(o, s) for o, s, is_blob in objs if is_blob]
            parts = _staging_parts(repo, i, blobs, limit)
            rest = size - parts.bytes
            out += [Batch([], s, [(r, cid)]) for (r, cid), s in zip(parts.staging, _part_sizes(repo, parts))]
            out.append(Batch([i], rest, drop=[r for r, _ in parts.staging]))
        elif out and not out[-1].drop and not out[-1].staging and out[-1].bytes + size <= limit:
            out[-1].ids.append(i)
            out[-1].bytes += size
        else:
            out.append(Batch([i], size))
    return out


def _part_sizes(repo: pygit2.Repository, parts: Batch) -> list[int]:
    return [sum(repo.odb.read_header(e.id)[1] for e in repo[cid].tree) for _, cid in parts.staging]


def _publishable(line: str, known: set[str], local_only: set[str]) -> bool:
    """Whether a plain push carries ``line``: a removal only when the remote has it, and no line of an
    entry that was removed before the remote ever listed it."""
    w = line.split(" ")
    if w[0] == "removed":
        return line in known
    return not (w[0] == "model" and len(w) > 2 and w[2] in local_only)


def _public_notes(repo: pygit2.Repository, remote: str, prune: bool) -> str | None:
    """The notes commit to push: ours, less the removal lines the remote does not have yet.

    A plain push must never hide an entry from teammates, so ``removed`` lines of ``git tvault rm``
    travel only with ``push --prune``. Without it, when our notes carry such lines, we push a
    commit on top of the remote's tip whose notes are ours without them (a fast-forward there);
    our own notes keep them.
    """
    r = _commit_ref(repo, NOTES_REF)
    if r is None:
        return None
    if prune:
        return str(r.id)
    theirs = _commit_ref(repo, tracking_refs(repo, remote)[0])
    their_map = notes._flatten(repo, theirs.tree) if theirs is not None else {}
    cur, changed = r.tree, False
    for sha, (path, blob) in sorted(notes._flatten(repo, r.tree).items()):
        mine = their_map.get(sha)
        if mine is not None and mine[1] == blob:
            continue
        text = notes.note_text(repo, blob, sha)
        if text is None or "removed " not in text:
            continue
        their_text = (notes.note_text(repo, mine[1], sha) or "") if mine is not None else ""
        known = set(notes.lines_of(their_text))
        listed_there = {n.entry for n in notes.parse(their_text)}
        unpublished = {
            w[1] for ln in notes.lines_of(text) if ln not in known and len(w := ln.split(" ")) > 1 and w[0] == "removed"
        }
        # an entry removed before it was ever pushed: its lines stay here too (its ref is never pushed)
        local_only = unpublished - listed_there

        new = "\n".join(ln for ln in notes.lines_of(text) if _publishable(ln, known, local_only))
        if new == text:
            continue
        if new.strip():
            written = repo[notes._write_path(repo, cur, path, notes.write_note(repo, new))]
        else:  # nothing left to publish in this note
            left = notes._remove_path(repo, cur, path)
            written = repo[left] if left is not None else repo[repo.TreeBuilder().write()]
        assert isinstance(written, pygit2.Tree)
        cur, changed = written, True
    if not changed:
        return str(r.id)
    if theirs is not None and cur.id == theirs.tree_id:
        return str(theirs.id)
    sig = signature(repo)
    msg = "tvault: index without unpublished removals (they travel with 'git tvault push --prune')\n"
    return str(repo.create_commit(None, sig, sig, msg, cur.id, [theirs.id] if theirs is not None else []))


def push(
    repo: pygit2.Repository,
    remote: str | None = None,
    progress: bool | None = None,
    *,
    max_bytes: int | None = None,
    prune: bool = False,
    say: Callable[[str], None] | None = None,
) -> Transfer:
    """pull, then push entries in batches under ``max_bytes``, then the index and aliases (never forced).

    Batches go oldest first, each a push of whole entries; the index goes last, so whatever the
    remote's index lists is there. A failed batch leaves a remote that a rerun completes: it
    pushes only the entries the remote lacks. ``prune`` also deletes, on the remote, the refs of
    entries removed here and publishes the removal lines (a plain push does neither). Retried
    after another pull when someone pushed in between.
    """
    remote = remote or default_remote(repo)
    limit = max_bytes if max_bytes is not None else max_push_bytes(repo)
    for attempt in range(_PUSH_RETRIES):
        t = pull(repo, remote, progress)
        if prune:  # deleting needs the refs it really has (git refuses to delete one it lacks)
            there = _entry_ids(ls_remote(repo, remote, [REF_PREFIX + "*"]))
        else:  # what its index lists (no second advertisement of every ref): an entry pushed by a
            # failed run but not indexed yet counts as missing, and git sends nothing for it
            shown, gone_there = listed(repo, tracking_refs(repo, remote)[0])
            there = (shown | gone_there) & _local_entry_ids(repo)
        _, removed = listed(repo, NOTES_REF)
        mine = _local_entry_ids(repo) - removed
        batches = plan_batches(repo, mine - there, mine & there, limit)
        t.batches = len(batches)
        for b in batches:
            if b.bytes > limit:
                t.warnings.append(f"a push of {mib(b.bytes)} is over the limit of {mib(limit)}; a host may refuse it")
        sent = set(mine & there)
        last = batches.pop() if batches else None
        for k, b in enumerate(batches, 1):
            if say is not None:
                say(f"batch {k}/{t.batches}: {mib(b.bytes)} ({_what(b)})")
            with edge_hint(repo, sent):  # (never a commit this push sends: git refuses a shallow ref update)
                t.stderr += run_git(repo, ["push", remote, *b.specs()], remote, "push", progress)
            sent.update(b.ids)
            sent.update(c for _, c in b.staging)  # parts are common from now on: the entry skips their blobs
        # last batch with the index and aliases (and the pruned refs): what the index lists is there
        specs = last.specs() if last is not None else []
        notes_tip = _public_notes(repo, remote, prune)
        if notes_tip is not None:
            specs.append(f"{notes_tip}:{NOTES_REF}")
        if _commit_ref(repo, ALIASES_REF) is not None:
            specs.append(f"{ALIASES_REF}:{ALIASES_REF}")
        gone = sorted(removed & there) if prune else []
        specs += [f":{REF_PREFIX}{i}" for i in gone]
        if not specs:
            return t  # an empty registry: nothing to publish
        if say is not None and last is not None and t.batches > 1:
            say(f"batch {t.batches}/{t.batches}: {mib(last.bytes)} ({_what(last)}) and the index")
        try:
            with edge_hint(repo, sent):  # send only tensors the remote lacks
                t.stderr += run_git(
                    repo, ["push", *(["--atomic"] if gone else []), remote, *specs], remote, "push", progress
                )
        except RemoteError as e:
            if _race_lost(e) and "hook declined" not in str(e).lower() and attempt + 1 < _PUSH_RETRIES:
                continue
            raise
        t.pushed, t.pruned = True, gone
        # the remote now has our tips: mirror them so the next fetch transfers nothing new
        t_notes, t_aliases = tracking_refs(repo, remote)
        if notes_tip is not None:
            repo.references.create(t_notes, pygit2.Oid(hex=notes_tip), force=True)
            r = repo.references.get(NOTES_REF)
            if r is not None and str(r.target) != notes_tip:
                notes.merge(repo, notes_tip)  # the commit made for the remote joins our history
        a = repo.references.get(ALIASES_REF)
        if a is not None:
            repo.references.create(t_aliases, a.target, force=True)
        return t
    raise RemoteError(f"could not push to {remote}: it kept changing ({_PUSH_RETRIES} tries)")  # pragma: no cover


def _what(b: Batch) -> str:
    if b.staging:
        return f"part {b.staging[0][0].rsplit('/', 1)[1]} of entry {b.staging[0][0].split('/')[-2][:10]}"
    return f"{len(b.ids)} entr{'y' if len(b.ids) == 1 else 'ies'}"


def _specs(ids: Iterable[str]) -> list[str]:
    return [f"{REF_PREFIX}{i}:{REF_PREFIX}{i}" for i in ids]


def _remote_url(repo: pygit2.Repository, remote: str) -> str:
    """What git would connect to for ``remote``, usable from another directory."""
    cwd = git_dir_cwd(repo)
    p = subprocess.run(["git", "remote", "get-url", remote], cwd=cwd, capture_output=True, text=True, env=git_env(repo))
    url = p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else remote
    if "://" not in url and not re.match(r"^[^/]+@[^/]+:", url):  # a path (scp-like ssh stays as is)
        full = os.path.join(cwd, url)
        if os.path.exists(full):
            return os.path.abspath(full)
    return url


@contextlib.contextmanager
def _remote_index(
    repo: pygit2.Repository, remote: str, progress: bool | None
) -> Iterator[tuple[pygit2.Repository, str, str]]:
    """The remote's index, cheaply: (a repository that sees it, notes ref, aliases ref there).

    Only the tip of the remote's notes is needed to resolve a ref, not their
    history (one commit per logged entry). It is fetched with ``--depth=1``
    into a scratch repository that borrows our objects (alternates), so this
    repository never becomes shallow; the scratch is deleted afterwards. The
    aliases (a short history) are fetched into our tracking ref as usual.
    Where a shallow fetch is refused, the full notes go to our tracking ref.
    """

    t_notes, t_aliases = tracking_refs(repo, remote)
    _fetch_index(repo, remote, progress, with_notes=False)
    base = os.path.join(common_dir(repo), "tvault")
    os.makedirs(base, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="remote-index-", dir=base)
    try:
        view = None
        try:
            subprocess.run(["git", "init", "-q", "--bare", scratch], check=True, capture_output=True)
            with open(os.path.join(scratch, "objects", "info", "alternates"), "w") as f:
                f.write(os.path.join(common_dir(repo), "objects") + "\n")
            p = subprocess.run(
                [
                    "git",
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--depth=1",
                    _remote_url(repo, remote),
                    f"+{NOTES_REF}:refs/index/notes",
                ],
                cwd=scratch,
                capture_output=True,
                env=git_env(pygit2.Repository(scratch), {"GIT_TERMINAL_PROMPT": "0"}),
            )
            if p.returncode == 0:
                view = pygit2.Repository(scratch)
                a = repo.references.get(t_aliases)
                if a is not None:
                    view.references.create("refs/index/aliases", a.target, force=True)
        except (OSError, subprocess.CalledProcessError, pygit2.GitError):
            view = None
        if view is not None:
            yield view, "refs/index/notes", "refs/index/aliases"
        else:
            try:
                run_git(
                    repo,
                    ["fetch", "--no-tags", "--no-write-fetch-head", remote, f"+{NOTES_REF}:{t_notes}"],
                    remote,
                    "fetch",
                    progress,
                )
            except RemoteError as e:
                if not _no_remote_ref(e):
                    raise
                raise RefNotFound(f"{remote} has no tvault registry (no {NOTES_REF})") from None
            yield repo, t_notes, t_aliases
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _resolve_remote(
    repo: pygit2.Repository,
    view: pygit2.Repository,
    remote: str,
    ref: str,
    t_notes: str,
    t_aliases: str,
) -> tuple[str, str, notes.NoteLine]:
    """(entry id, training commit, its note line) for ``ref`` as the remote's index (seen in ``view``) reads it."""
    parsed = EntryRef.parse(ref)
    ref = parsed.text if parsed is not None else ref.strip()
    entry_id = None
    if parsed is not None and parsed.kind == "name":
        entry_id = names.resolve(view, parsed.name, parsed.selector, notes_ref=t_notes, aliases_ref=t_aliases).id
    elif parsed is not None and parsed.kind == "index":
        rev, idx = parsed.rev, parsed.index
        try:
            commit = entries.resolve_commit(repo, rev)
        except RefNotFound:  # a training commit we do not have: the remote's index still names it
            hits = [
                c for c, _ in notes.walk(view, t_notes) if ID_PREFIX_RE.fullmatch(rev) and c.startswith(rev.lower())
            ]
            if len(hits) != 1:
                raise
            commit = hits[0]
        lines = notes.read(view, commit, t_notes)
        if idx >= len(lines):
            raise RefNotFound(f"on {remote}, commit {commit[:7]} has {len(lines)} entries; there is no model {idx}")
        entry_id = lines[idx].entry
    elif parsed is not None and parsed.kind == "id":  # among the entries the remote's index lists
        ids = sorted({n.entry for _, ls in notes.walk(view, t_notes) for n in ls if n.entry.startswith(parsed.prefix)})
        if len(ids) > 1:
            raise RefNotFound(f"entry ref {ref!r} is ambiguous on {remote}: {', '.join(i[:10] for i in ids[:10])}")
        entry_id = ids[0] if ids else None
    if entry_id is None:
        raise RefNotFound(f"no entry {ref!r} on {remote}; use an entry id, COMMIT:INDEX or NAME@VERSION")
    for commit, lines in notes.walk(view, t_notes):
        for n in lines:
            if n.entry == entry_id:
                return entry_id, commit, n
    raise RefNotFound(f"entry {entry_id[:12]} is not in {remote}'s index")


def fetch_one(repo: pygit2.Repository, remote: str | None, ref: str, progress: bool | None = None) -> entries.Entry:
    """Bring exactly one entry (its objects only) and index it here with the remote's own note line.

    ``ref`` is read the way the remote reads it: an id prefix, ``COMMIT:N``, or
    ``NAME@N``/``NAME@alias``/``NAME@latest``/``NAME@best`` by the remote's
    index and aliases. The remote's aliases are merged into ours.
    """
    remote = remote or default_remote(repo)
    with _remote_index(repo, remote, progress) as (view, n_ref, a_ref):
        entry_id, commit, line = _resolve_remote(repo, view, remote, ref, n_ref, a_ref)
        listed = {n.entry for _, ls in notes.walk(view, n_ref) for n in ls if not n.removed}
    t_aliases = tracking_refs(repo, remote)[1]
    if repo.get(entry_id) is None or repo.references.get(REF_PREFIX + entry_id) is None:
        spec = f"{REF_PREFIX}{entry_id}:{REF_PREFIX}{entry_id}"  # by name: the one ref advertised
        try:
            with edge_hint(repo, listed & _local_entry_ids(repo)):  # entries both sides have (by its index)
                run_git(repo, ["fetch", "--no-tags", "--no-write-fetch-head", remote, spec], remote, "fetch", progress)
        except RemoteError as e:
            if not _no_remote_ref(e):
                raise
            raise RefNotFound(
                f"{remote} indexes entry {entry_id[:12]} but does not have its objects (refs/tvault/entries/{entry_id[:12]}...)"
            ) from None
    if repo.get(entry_id) is None:
        raise RemoteError(f"fetched {entry_id[:12]} from {remote} but its objects did not arrive")
    notes.add(
        repo,
        commit,
        entry_id,
        line.name,
        line.result,
        created=line.created,
        seq=line.seq,
        display=line.display,
        published=line.published,
    )
    r = repo.references.get(t_aliases)
    if r is not None:
        names.merge_alias_ref(repo, r.target)
    return next(e for e in entries.entries_on(repo, commit) if e.id == entry_id)


def publish(remote: str | None = None, repo: str | os.PathLike | pygit2.Repository | None = None) -> Transfer:
    """Push this repository's registry (entries, index, aliases) to ``remote`` (default: origin)."""

    r = open_repo_like(repo)
    return push(r, remote)


def check_remote_name(remote: str) -> str:
    if not remote or remote.startswith("-"):
        raise InvalidInput(f"bad remote {remote!r}: give a remote name (origin) or a URL/path")
    return remote
