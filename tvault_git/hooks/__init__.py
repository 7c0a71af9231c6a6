"""``git tvault install/uninstall`` and the git hooks they install (post-commit, post-rewrite).

Why hooks: training often runs on uncommitted code. An entry logged from a
dirty work tree records its base commit and the patch; when the user then
commits exactly that code, the post-commit hook lists the entry on the new
commit too (``find --hash NEWCOMMIT``). ``git commit --amend`` and ``git
rebase`` rewrite commits; post-rewrite moves their note lines along.

The hooks run ``python -m tvault_git.hooks``: pygit2 and a few git calls, no
torch, no click. They never fail a commit (the shell wrapper turns any error
into a warning) and chain to a user's existing hook instead of replacing it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import pygit2

from tvault_git.errors import GitCommandError, InstallationError, InvalidInput, TvaultError
from tvault_git.gitutil.run import run_git
from tvault_git.registry import entries, notes
from tvault_git.spec.format import NOTES_REF, PATCH

HOOKS = ("post-commit", "post-rewrite")
MARKER = "tvault-git post-"
CHAINED_SUFFIX = ".tvault-chained"


def _git(repo: pygit2.Repository, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
    return run_git(repo, list(args), input=input, env=env)


# --- install -------------------------------------------------------------------


def template_dir() -> Path:
    """The hook scripts, shipped as package data (``tvault_git/hooks/templates``) with the code that runs them."""
    d = Path(str(resources.files(__name__) / "templates"))
    if all((d / h).is_file() for h in HOOKS):
        return d
    raise InstallationError(f"tvault-git's hook scripts are missing from {d}; reinstall tvault-git")


def hooks_dir(repo: pygit2.Repository) -> Path:
    """Where git looks for hooks (honours core.hooksPath and linked worktrees)."""
    p = Path(_git(repo, "rev-parse", "--git-path", "hooks"))
    return p if p.is_absolute() else Path(repo.workdir or repo.path) / p


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def _config_add(repo: pygit2.Repository, key: str, value: str) -> None:
    have = subprocess.run(
        ["git", "config", "--get-all", key], cwd=repo.workdir or repo.path, capture_output=True, text=True
    ).stdout.split()
    if value not in have:
        _git(repo, "config", "--add", key, value)


def _config_remove(repo: pygit2.Repository, key: str, value: str) -> None:
    subprocess.run(
        ["git", "config", "--unset-all", key, f"^{value}$"], cwd=repo.workdir or repo.path, capture_output=True
    )


def install(repo: pygit2.Repository, python: str | None = None) -> list[str]:
    """Install the hooks (chaining existing ones) and the config; returns what was done, one line each."""
    src = template_dir()
    dest = hooks_dir(repo)
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for h in HOOKS:
        target = dest / h
        chained = dest / (h + CHAINED_SUFFIX)
        if target.exists() and not _ours(target):
            if chained.exists():
                raise InvalidInput(
                    f"both {target} and {chained} exist; move one away, then run 'git tvault install' again"
                )
            target.rename(chained)
            done.append(f"kept your {h} hook: it now runs first, from {chained.name}")
        text = (src / h).read_text()
        text = text.replace("@PYTHON@", python or sys.executable).replace(
            "@CHAINED@", str(chained) if chained.exists() else ""
        )
        tmp = target.with_name(target.name + ".tvault-tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, target)
        done.append(f"installed {h} hook in {dest}")
    _config_add(repo, "notes.displayRef", NOTES_REF)
    _config_add(repo, "notes.rewriteRef", NOTES_REF)
    done.append("git log now shows tvault notes (notes.displayRef); rewrites copy them (notes.rewriteRef)")
    return done


def uninstall(repo: pygit2.Repository) -> list[str]:
    """Remove our hooks (restoring chained user hooks) and our config values."""
    dest = hooks_dir(repo)
    done = []
    for h in HOOKS:
        target = dest / h
        chained = dest / (h + CHAINED_SUFFIX)
        if target.exists() and _ours(target):
            target.unlink()
            done.append(f"removed {h} hook")
        if chained.exists() and not target.exists():
            chained.rename(target)
            done.append(f"restored your {h} hook")
    _config_remove(repo, "notes.displayRef", NOTES_REF)
    _config_remove(repo, "notes.rewriteRef", NOTES_REF)
    done.append("removed notes.displayRef/notes.rewriteRef for tvault")
    return done


# --- post-commit ---------------------------------------------------------------


def trained_tree(repo: pygit2.Repository, base: pygit2.Commit, patch: bytes) -> str | None:
    """The tree of base + patch (what the work tree's tracked files held at training); None if it does not apply."""
    if not patch.strip():
        return str(base.tree.id)
    fd, index = tempfile.mkstemp(prefix="tvault-index-")
    os.close(fd)
    os.unlink(index)  # read-tree wants to create it
    env = {"GIT_INDEX_FILE": index}
    try:
        _git(repo, "read-tree", str(base.tree.id), env=env)
        _git(repo, "apply", "--cached", "--whitespace=nowarn", "-", input=patch, env=env)
        return _git(repo, "write-tree", env=env)
    except GitCommandError:
        return None
    finally:
        for p in (index, index + ".lock"):
            try:
                os.unlink(p)
            except OSError:
                pass


_DIFF_RE = re.compile(rb"^diff --git a/(.+?) b/(.+)$", re.M)
_INDEX_RE = re.compile(rb"^index [0-9a-f]+\.\.([0-9a-f]+)", re.M)


def _may_give(patch: bytes, changed: dict[str, str | None]) -> bool:
    """Cheap test, no git process: can base + ``patch`` be HEAD's tree? The files the patch touches
    must be exactly the files HEAD changed, and each ``index OLD..NEW`` must name HEAD's blob.

    Why: ``trained_tree`` costs three git processes; with 300 dirty entries on the parent that
    added seconds to every commit. Only a patch that passes this is applied for real.
    """
    touched: list[str] = []
    paths: set[str] = set()
    for m in _DIFF_RE.finditer(patch):
        old, new = (g.decode("utf-8", "replace") for g in m.groups())
        touched.append(new)
        paths |= {old, new}
    if paths != set(changed):
        return False
    news = [m.group(1).decode() for m in _INDEX_RE.finditer(patch)]
    heads = [changed[p] for p in touched]
    if len(news) != len(heads):
        return True  # mode-only or binary hunks: let git decide
    return all(h is None or h.startswith(n) or set(n) == {"0"} for n, h in zip(news, heads))


def post_commit(repo: pygit2.Repository) -> list[str]:
    """List dirty-tree entries of the parent on HEAD when HEAD holds exactly their code; returns their ids."""
    if repo.head_is_unborn:
        return []
    head = repo.head.peel(pygit2.Commit)
    on_head = {n.entry for n in notes.read(repo, str(head.id))}
    attached = []
    trees: dict[str, str | None] = {}
    for parent in head.parents[:1]:
        changed: dict[str, str | None] | None = None
        for n in notes.read(repo, str(parent.id)):
            if n.entry in on_head or n.removed:
                continue
            try:
                m = entries.read_manifest(repo, n.entry)
                if not m.get("dirty") or m.get("commit") != str(parent.id):
                    continue
                tree = entries.entry_tree(repo, n.entry)
                patch = entries.read_blob(repo, tree, PATCH) or b""
            except TvaultError:
                continue  # objects not here (indexed from a remote): nothing to compare
            key = str(tree[PATCH].id) if PATCH in tree else ""
            if patch.strip():
                if changed is None:
                    changed = {}
                    for d in repo.diff(parent.tree, head.tree).deltas:
                        gone = d.new_file.id == pygit2.Oid(hex="0" * 40)
                        changed[d.new_file.path] = None if gone else str(d.new_file.id)
                        if d.old_file.path != d.new_file.path:
                            changed[d.old_file.path] = None
                if not _may_give(patch, changed):
                    continue
            if key not in trees:
                trees[key] = trained_tree(repo, parent, patch)
            if trees[key] == str(head.tree.id):
                notes.add(
                    repo,
                    str(head.id),
                    n.entry,
                    n.name,
                    n.result,
                    created=n.created or m.get("created"),
                    display=n.display,
                    published=n.published,
                )
                attached.append(n.entry)
    return attached


def post_rewrite(repo: pygit2.Repository, lines: list[str]) -> int:
    """Move note lines from rewritten commits to their replacements (stdin of post-rewrite: 'old new')."""
    pairs = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 40 and len(parts[1]) == 40:
            pairs.append((parts[0], parts[1]))
    return notes.move(repo, pairs) if pairs else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the installed hooks; prints a warning and returns 1 on any error (the hook exits 0)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        from tvault_git.gitutil.repo import open_repo

        repo = open_repo(os.getcwd())
        if args and args[0] == "post-commit":
            ids = post_commit(repo)
            if ids:
                print(
                    f"tvault: attached {len(ids)} entr{'y' if len(ids) == 1 else 'ies'} trained on this code to {str(repo.head.target)[:7]}",
                    file=sys.stderr,
                )
        elif args and args[0] == "post-rewrite":
            post_rewrite(repo, sys.stdin.read().splitlines())
        else:
            print(f"usage: python -m tvault_git.hooks {'|'.join(HOOKS)}", file=sys.stderr)
            return 2
    except Exception as e:  # a hook must never break the user's commit
        print(f"tvault: warning: {args[0] if args else 'hook'}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
