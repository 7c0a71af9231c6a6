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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pygit2

from tvault_git.errors import InvalidInput, RefNotFound, RemoteError
from tvault_git.gitutil.repo import common_dir, git_env, open_repo_like
from tvault_git.registry import entries, names, notes
from tvault_git.spec.format import ALIASES_REF, HEX40, NOTES_REF, REF_PREFIX
from tvault_git.spec.refs import ID_PREFIX_RE, EntryRef

TRACK_PREFIX = "refs/tvault-remote/"
ENTRY_SPEC = f"{REF_PREFIX}*:{REF_PREFIX}*"
_PUSH_RETRIES = 5


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
        return RemoteError(f"{remote} rejected the {op} (permissions or a server-side rule): {detail}", remote=remote)
    return RemoteError(f"git {op} {remote} failed: {detail}", remote=remote)


def run_git(repo: pygit2.Repository, args: list[str], remote: str, op: str, progress: bool | None = None) -> str:
    """Run ``git <args>`` in the repo; stream its progress to a terminal; return stderr; RemoteError on failure."""
    if progress is None:
        progress = sys.stderr.isatty()
    cmd = ["git", *args]
    if progress and args and args[0] in ("fetch", "push"):
        cmd.insert(2, "--progress")
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
        ["git", "ls-remote", remote, *patterns],
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


def fetch(repo: pygit2.Repository, remote: str | None = None, progress: bool | None = None) -> Transfer:
    """Download the remote's entries and its index into tracking refs; our own index is untouched."""
    remote = remote or default_remote(repo)
    have = ls_remote(repo, remote, [REF_PREFIX + "*", NOTES_REF, ALIASES_REF])
    t_notes, t_aliases = tracking_refs(repo, remote)
    specs = [ENTRY_SPEC]
    if NOTES_REF in have:
        specs.append(f"+{NOTES_REF}:{t_notes}")
    if ALIASES_REF in have:
        specs.append(f"+{ALIASES_REF}:{t_aliases}")
    before = _local_entry_ids(repo)
    t = Transfer(remote)
    t.remote_ids = _entry_ids(have)
    odd = sorted(r for r in have if r.startswith(REF_PREFIX) and r[len(REF_PREFIX) :] not in t.remote_ids)
    specs += [f"^{r}" for r in odd]  # negative refspecs (git >= 2.29): not entries, never copied
    t.warnings += [f"left out {r}: not an entry id" for r in odd[:3]] + (
        [f"and {len(odd) - 3} more odd refs"] if len(odd) > 3 else []
    )
    if len(specs) > 1 or t.remote_ids - before:  # an empty remote needs no fetch at all
        with edge_hint(repo, t.remote_ids & before):
            t.stderr = run_git(
                repo, ["fetch", "--no-tags", "--no-write-fetch-head", remote, *specs], remote, "fetch", progress
            )
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


def push(repo: pygit2.Repository, remote: str | None = None, progress: bool | None = None) -> Transfer:
    """pull, then push entries, index and aliases without force; retried when someone pushed in between."""
    remote = remote or default_remote(repo)
    for attempt in range(_PUSH_RETRIES):
        t = pull(repo, remote, progress)
        specs = [ENTRY_SPEC] if _local_entry_ids(repo) else []
        for ref in (NOTES_REF, ALIASES_REF):
            if repo.references.get(ref) is not None:
                specs.append(f"{ref}:{ref}")
        if not specs:
            return t  # an empty registry: nothing to publish
        try:
            with edge_hint(repo, t.remote_ids):  # send only tensors the remote lacks
                t.stderr += run_git(repo, ["push", remote, *specs], remote, "push", progress)
        except RemoteError as e:
            if _race_lost(e) and "hook declined" not in str(e).lower() and attempt + 1 < _PUSH_RETRIES:
                continue
            raise
        t.pushed = True
        # the remote now has our tips: mirror them so the next fetch transfers nothing new
        t_notes, t_aliases = tracking_refs(repo, remote)
        for ref, track in ((NOTES_REF, t_notes), (ALIASES_REF, t_aliases)):
            r = repo.references.get(ref)
            if r is not None:
                repo.references.create(track, r.target, force=True)
        return t
    raise RemoteError(f"could not push to {remote}: it kept changing ({_PUSH_RETRIES} tries)")  # pragma: no cover


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
) -> Iterator[tuple[dict[str, str], pygit2.Repository, str, str]]:
    """The remote's index, cheaply: (its refs, a repository that sees it, notes ref, aliases ref there).

    Only the tip of the remote's notes is needed to resolve a ref, not their
    history (one commit per logged entry). It is fetched with ``--depth=1``
    into a scratch repository that borrows our objects (alternates), so this
    repository never becomes shallow; the scratch is deleted afterwards. The
    aliases (a short history) are fetched into our tracking ref as usual.
    Where a shallow fetch is refused, the full notes go to our tracking ref.
    """

    have = ls_remote(repo, remote, [REF_PREFIX + "*", NOTES_REF, ALIASES_REF])
    if NOTES_REF not in have:
        raise RefNotFound(f"{remote} has no tvault registry (no {NOTES_REF})")
    t_notes, t_aliases = tracking_refs(repo, remote)
    if ALIASES_REF in have:
        run_git(
            repo,
            ["fetch", "--no-tags", "--no-write-fetch-head", remote, f"+{ALIASES_REF}:{t_aliases}"],
            remote,
            "fetch",
            progress,
        )
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
            yield have, view, "refs/index/notes", "refs/index/aliases"
        else:
            run_git(
                repo,
                ["fetch", "--no-tags", "--no-write-fetch-head", remote, f"+{NOTES_REF}:{t_notes}"],
                remote,
                "fetch",
                progress,
            )
            yield have, repo, t_notes, t_aliases
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _resolve_remote(
    repo: pygit2.Repository,
    view: pygit2.Repository,
    remote: str,
    ref: str,
    have: dict[str, str],
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
    elif parsed is not None and parsed.kind == "id":
        ids = sorted(i for i in _entry_ids(have) if i.startswith(parsed.prefix))
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
    with _remote_index(repo, remote, progress) as (have, view, n_ref, a_ref):
        entry_id, commit, line = _resolve_remote(repo, view, remote, ref, have, n_ref, a_ref)
    t_aliases = tracking_refs(repo, remote)[1]
    if REF_PREFIX + entry_id not in have:
        raise RefNotFound(
            f"{remote} indexes entry {entry_id[:12]} but does not have its objects (refs/tvault/entries/{entry_id[:12]}...)"
        )
    if repo.get(entry_id) is None or repo.references.get(REF_PREFIX + entry_id) is None:
        spec = f"{REF_PREFIX}{entry_id}:{REF_PREFIX}{entry_id}"
        remote_ids = _entry_ids(have)
        with edge_hint(repo, remote_ids & _local_entry_ids(repo)):
            run_git(repo, ["fetch", "--no-tags", "--no-write-fetch-head", remote, spec], remote, "fetch", progress)
    if repo.get(entry_id) is None:
        raise RemoteError(f"fetched {entry_id[:12]} from {remote} but its objects did not arrive")
    notes.add(repo, commit, entry_id, line.name, line.result, created=line.created, seq=line.seq, display=line.display)
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
