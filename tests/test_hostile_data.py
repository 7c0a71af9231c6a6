"""Hostile registry contents pulled by a victim: escapes, bombs, budgets, damaged objects (issue 14).

D3 D4 D5 D7 D8 D9 D10 D11 D13 D14 D17 D18 D21; D6 (the UI's Host allow-list) is at the end.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
from pathlib import Path

import pygit2
import pytest

from tests.helpers import git
from tests.hostile_kit import (
    GITLINK,
    World,
    add_note,
    blob,
    cli,
    entry,
    log_in,
    manifest,
    no_traceback,
    raw_commit,
    set_ref,
    tree,
    weights,
    world,
)

LIMIT_MB = 700  # address space for a torch-free victim command (a bare `git tvault log` needs < 300)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return world(tmp_path)


def _controls(text: str) -> list[str]:
    return sorted({c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F})


def test_terminal_escapes_are_neutralised_json_stays_exact(w: World) -> None:
    """D3: OSC 52, OSC 8, clear screen, CR+erase and 8-bit CSI in every field reach no terminal."""
    msg = "ok\x1b]52;c;ZXZpbA==\x07\r\x1b[2Kforged line"
    m = manifest(
        w.commit,
        message=msg,
        tags={"t\x1b[2J": "\x1b]8;;http://evil\x07link\x1b]8;;\x07"},
        author={"name": "\x1b]0;title\x07Eve", "email": "e@x"},
        branch="\x9b31mred",
        created="2031-01-01T00:00:00+00:00",
    )
    evil = entry(w, m, {"architecture.txt": b"Net(\x1b[2J)\n"})
    assert w.pull().returncode == 0
    for args in (
        ["log"],
        ["find", "--name", "mnist"],
        ["show", evil],
        ["history", "mnist"],
        ["diff", "--no-pager", w.victim_entry, evil],
        ["history", "x\x1b]52;c;Zm9v\x07"],
        ["show", "nope\x1b[2J@1"],
    ):
        p = cli(w.victim, *args)
        no_traceback(p)
        assert _controls(p.stdout + p.stderr) == [], (args, p.stdout, p.stderr)
    js = json.loads(cli(w.victim, "log", "--json").stdout)
    assert next(r for r in js if r["id"] == evil)["message"] == msg  # JSON keeps the exact value


def test_csv_cells_never_run_as_formulas(w: World) -> None:
    """D14: find --csv writes =, +, -, @ cells as text; numbers stay numbers."""
    tags = {"c": "=cmd|' /C calc'!A0", "h": '=HYPERLINK("http://x","y")', "s": "+SUM(1)", "a": "@x", "n": -0.5}
    entry(w, manifest(w.commit, tags=tags, message="-2+3"))
    assert w.pull().returncode == 0
    out = cli(w.victim, "find", "--csv").stdout
    cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
    assert not [
        c for c in cells if (c and (c[0] in "=+@")) or (c[:1] == "-" and not c.lstrip("-").replace(".", "").isdigit())
    ], out
    assert "-0.5" in cells


def _bomb_note(n_mb: int) -> bytes:
    return b"comment x\n" * (n_mb * 1024 * 1024 // 10)


def test_note_bomb_is_never_read(w: World) -> None:
    """D4: a 128 MiB note (kilobytes on the wire) on the victim's commit: skipped from its header."""
    add_note(w, "ab" * 20, _bomb_note(128))
    add_note(w, w.commit, _bomb_note(128))
    p = w.pull(limit_mb=1500)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    for args in (["log"], ["history", "mnist"], ["show", "HEAD:0"], ["fsck", "--quick"]):
        q = cli(w.victim, *args, limit_mb=LIMIT_MB, timeout=60)
        no_traceback(q)
        assert q.returncode in (0, 4), (args, q.stderr)
    log = cli(w.victim, "log", limit_mb=LIMIT_MB)
    assert w.victim_entry[:10] in log.stdout
    assert (
        pygit2.Repository(str(w.victim)).odb.read_header(  # the victim's own note was not replaced by the bomb
            pygit2.Repository(str(w.victim)).lookup_note(w.commit, "refs/notes/tvault").id
        )[1]
        < 1024
    )


def test_blob_bombs_are_refused_from_their_headers(w: World) -> None:
    """D4: a 128 MiB architecture, source and patch, a 100 MiB manifest, a 32 MiB aliases blob."""
    big = b"x" * (128 << 20)
    arch = entry(
        w,
        manifest(w.commit, dirty=True, created="2031-01-01T00:00:00+00:00"),
        {
            "architecture.txt": big,
            "patch.diff": big,
            "source/m/Net.py": big,
            "source.json": json.dumps(
                {
                    "objects": [
                        {
                            "kind": "class",
                            "module": "m",
                            "qualname": "Net",
                            "file": "m.py",
                            "line": 1,
                            "path": "source/m/Net.py",
                        }
                    ]
                }
            ).encode(),
        },
        seq=3,
    )
    fat = entry(w, b'{"format": "1.0", "tags": {"x": "' + b"y" * (100 << 20) + b'"}}', seq=4)
    set_ref(w, "refs/tvault/aliases", raw_commit(w.er, tree(w.er, {"aliases": b"alias mnist x " * (3 << 20)})))
    assert w.pull(limit_mb=1500).returncode == 0
    s = cli(w.victim, "show", arch, "--source", "--patch", limit_mb=LIMIT_MB, timeout=60)
    no_traceback(s)
    assert s.returncode == 0 and "over the" in s.stdout, s.stderr
    log = cli(w.victim, "log", limit_mb=LIMIT_MB, timeout=60)
    assert log.returncode == 0 and fat[:10] in log.stderr, log.stderr
    a = cli(w.victim, "alias", limit_mb=LIMIT_MB, timeout=60)
    no_traceback(a)
    assert a.returncode == 0


def _repeated(w: World, n_chunks: int, seq: int, fill: bytes = b"\0") -> str:
    """A tensor that declares n_chunks x 32 MiB from one constant chunk (a 32 MiB constant blob is ~33 KB packed)."""
    r = w.er
    cid = blob(r, fill * (32 << 20))
    rec = {"dtype": "uint8", "shape": [n_chunks << 25], "nbytes": n_chunks << 25, "chunks": [cid] * n_chunks}
    wj = json.dumps({"chunk_bytes": 33554432, "tensors": {"big": rec}}).encode()
    return entry(
        w,
        manifest(w.commit, created=f"2031-01-0{seq}T00:00:00+00:00"),
        {"weights.json": wj, f"tvault-blobs/{cid}": (pygit2.enums.FileMode.BLOB, cid)},
        seq=seq,
    )


def test_declared_sizes_are_bound_to_stored_bytes(w: World) -> None:
    """D5: 8 GiB declared from one zero chunk is refused before allocation; a 1 TB pair does not stall diff."""
    e8 = _repeated(w, 256, 3)
    ea = _repeated(w, 32768, 4)
    eb = _repeated(w, 32768, 5, fill=b"\1")
    assert w.pull().returncode == 0
    out = w.tmp / "x.safetensors"
    p = cli(w.victim, "export", e8, str(out), limit_mb=2500, timeout=120)
    no_traceback(p)
    assert p.returncode == 4 and "declares" in p.stderr and not out.exists(), p.stderr
    d = cli(w.victim, "diff", "--no-pager", ea, eb, timeout=120)
    no_traceback(d)
    assert d.returncode == 0 and "not compared" in d.stdout, (d.stdout, d.stderr)
    assert cli(w.victim, "fsck").returncode == 4


def _weights_file(w: World, rec: object) -> bytes:
    return json.dumps({"chunk_bytes": 33554432, "tensors": {"w": rec}}).encode()


@pytest.mark.parametrize(
    "kind", ["dtype-list", "record-list", "weights-gitlink", "arch-gitlink", "shape-4tb", "source-gitlink"]
)
def test_malformed_parts_are_one_line_corrupt_entry(w: World, kind: str) -> None:
    """D11: refused as CorruptEntry (exit 4), one line, nothing allocated, the tensor named."""
    r = w.er
    cid = blob(r, b"\0" * 16)
    ok = {"dtype": "float32", "shape": [4], "nbytes": 16, "chunks": [cid]}
    files: dict[str, object] = {f"tvault-blobs/{cid}": b"\0" * 16, "weights.json": _weights_file(w, ok)}
    if kind == "dtype-list":
        files["weights.json"] = _weights_file(w, {**ok, "dtype": ["float32"]})
    elif kind == "record-list":
        files["weights.json"] = _weights_file(w, [1, 2])
    elif kind == "weights-gitlink":
        files["weights.json"] = (GITLINK, "2" * 40)
    elif kind == "arch-gitlink":
        files["architecture.txt"] = (GITLINK, "3" * 40)
    elif kind == "source-gitlink":
        files["source.json"] = (GITLINK, "4" * 40)
    elif kind == "shape-4tb":
        files["weights.json"] = _weights_file(
            w, {"dtype": "float32", "shape": [1 << 40], "nbytes": 4 << 40, "chunks": [cid] * (1 << 17)}
        )
    bad = entry(w, manifest(w.commit, created="2031-01-01T00:00:00+00:00"), files, seq=3)
    assert w.pull().returncode == 0
    for args in (["export", bad, str(w.tmp / "o.pt")], ["show", bad]):
        p = cli(w.victim, *args, limit_mb=2500, timeout=120)
        no_traceback(p)
        if kind in ("arch-gitlink", "source-gitlink", "shape-4tb") and args[0] == "show":
            # show lists what it can: the bad part is named in place, a consistent 4 TiB record is only listed
            assert p.returncode in (0, 4) and ("not a file" in p.stdout + p.stderr or kind == "shape-4tb"), p.stdout
            continue
        if kind in ("arch-gitlink", "source-gitlink") and args[0] == "export":
            assert p.returncode == 0  # the weights are fine
            continue
        assert p.returncode == 4 and p.stderr.startswith("tvault: error:"), (args, p.stderr)
    assert cli(w.victim, "log").returncode == 0


def test_truncated_loose_weight_object_is_refused_not_hung(w: World) -> None:
    """D9: a small fetch leaves objects loose; one weight object loses its last 6 bytes."""
    data = os.urandom(4096)
    wj, chunks = weights(w.er, data=data, shape=[1024])
    cid = next(iter(chunks)).split("/")[1]
    evil = entry(w, manifest(w.commit, created="2031-01-01T00:00:00+00:00"), {"weights.json": wj, **chunks}, seq=3)
    assert w.pull().returncode == 0
    loose = w.victim / ".git" / "objects" / cid[:2] / cid[2:]
    assert loose.exists(), "expected a loose object after a small fetch"
    os.chmod(loose, 0o644)
    loose.write_bytes(loose.read_bytes()[:-6])
    out = w.tmp / "o.pt"
    p = cli(w.victim, "export", evil, str(out), timeout=60)
    no_traceback(p)
    assert p.returncode == 4 and "'w'" in p.stderr and not out.exists(), p.stderr


def test_newer_major_entry_weights_are_refused(w: World) -> None:
    """D10: load/load_tensor/export refuse a format 2.0 entry (exit 5), never guess."""
    import tvault_git as tvault

    evil = entry(w, manifest(w.commit, format="2.0"), seq=3)
    assert w.pull().returncode == 0
    for fn in (
        lambda: tvault.load(evil, repo=str(w.victim)),
        lambda: tvault.load_tensor(evil, "w", repo=str(w.victim)),
    ):
        with pytest.raises(tvault.UnsupportedFormat):
            fn()
    p = cli(w.victim, "export", evil, str(w.tmp / "o.pt"))
    assert p.returncode == 5 and "upgrade" in p.stderr


def test_damaged_local_idx_is_corrupt_entry(w: World) -> None:
    """D21: a large-offset flag with no large-offset table in tvault's own .idx: one line, exit 4."""
    pack_dir = w.victim / ".git" / "objects" / "pack"
    idx = next(p for p in pack_dir.glob("pack-*.idx") if (p.with_suffix(".keep")).exists())
    raw = bytearray(idx.read_bytes())
    n = struct.unpack(">I", raw[8 + 1020 : 8 + 1024])[0]
    base = 8 + 1024 + 24 * n
    for i in range(n):
        raw[base + 4 * i : base + 4 * i + 4] = struct.pack(">I", 0x80000000 | 7)
    os.chmod(idx, 0o644)
    idx.write_bytes(bytes(raw))
    p = cli(w.victim, "export", "HEAD:0", str(w.tmp / "o.pt"))
    no_traceback(p)
    assert p.returncode == 4 and "pack index" in p.stderr, p.stderr


def test_worktree_diff_never_opens_paths_outside_the_tree(w: World) -> None:
    """D7: source.json names ../secret.py, an absolute path, /dev/zero and a FIFO."""
    (w.tmp / "secret.py").write_text("class Key:\n    API_KEY = 'sekrit'\n")
    os.mkfifo(w.victim / "fifo.py")
    objs = [
        {
            "kind": "class",
            "role": "module",
            "module": "m",
            "qualname": "Key",
            "file": f,
            "line": 1,
            "path": "source/m/Key.py",
        }
        for f in ("../secret.py", str(w.tmp / "secret.py"), "/dev/zero", "fifo.py")
    ]
    evil = entry(
        w,
        manifest(w.commit, created="2031-01-01T00:00:00+00:00"),
        {"source.json": json.dumps({"objects": objs}).encode(), "source/m/Key.py": b"class Key:\n    pass\n"},
        seq=3,
    )
    assert w.pull().returncode == 0
    p = cli(w.victim, "diff", "--no-pager", evil, limit_mb=LIMIT_MB, timeout=60)
    no_traceback(p)
    assert p.returncode == 0 and "sekrit" not in p.stdout, p.stdout


def test_diff_without_the_training_commit_degrades(w: World) -> None:
    """D8: a teammate's unpushed training commit, a note on a blob, a commit with encoding x-nope."""
    ghost = "9" * 40
    e1 = entry(w, manifest(ghost, created="2031-01-01T00:00:00+00:00"), on=ghost, seq=0)
    r = w.er
    weird = raw_commit(r, tree(r, {"a.txt": b"a\n"}), "weird\n", extra_headers="encoding x-nope\n")
    set_ref(w, "refs/heads/weird", weird)
    e2 = entry(w, manifest(weird, created="2031-01-02T00:00:00+00:00"), on=weird, seq=0)
    b = blob(r, b"not a commit\n")
    e3 = entry(w, manifest(b, created="2031-01-03T00:00:00+00:00"), on=b, seq=0)
    assert w.pull().returncode == 0
    git(w.victim, "fetch", "-q", str(w.evil), "refs/heads/weird:refs/heads/weird")
    git(w.victim, "cat-file", "-e", b) if False else None
    for other in (e1, e2, e3):
        for args in (
            ["diff", "--no-pager", w.victim_entry, other],
            ["diff", "--no-pager", "--stat", other, w.victim_entry],
        ):
            p = cli(w.victim, *args)
            no_traceback(p)
            assert p.returncode == 0, (args, p.stderr)
    from tvault_git import web

    c = web.create_app(str(w.victim)).test_client()
    for e in (e1, e2, e3):
        assert c.get(f"/entry/{e}", headers={"Host": "127.0.0.1"}).status_code == 200
        assert c.get(f"/compare?a={w.victim_entry}&b={e}", headers={"Host": "127.0.0.1"}).status_code == 200


def test_ui_export_and_live_ui_survive_odd_entries(w: World) -> None:
    """D13: a 200-char name, a glob name, author/parameters of the wrong type: the site is whole."""
    for i, m in enumerate(
        [
            manifest(w.commit, name="é" * 200),
            manifest(w.commit, name="mn*st"),
            manifest(w.commit, author="eve"),
            manifest(w.commit, model={"class": "x", "parameters": "many"}),
        ]
    ):
        entry(w, m, seq=3 + i, name=m["name"] if isinstance(m["name"], str) and " " not in m["name"] else "mnist")
    assert w.pull().returncode == 0
    out = w.tmp / "site"
    p = cli(w.victim, "ui", "--export", str(out))
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert (out / "index.html").exists() and w.victim_entry[:10] in (out / "index.html").read_text()
    from tvault_git import web

    c = web.create_app(str(w.victim)).test_client()
    for url in ("/", "/models", "/model/mnist", f"/entry/{w.victim_entry}"):
        assert c.get(url, headers={"Host": "localhost"}).status_code == 200, url


def test_ui_answers_only_loopback_hosts_or_the_token(w: World) -> None:
    """D6: DNS rebinding: a page on evil.example re-resolved to 127.0.0.1 gets 400; a LAN bind needs the token."""
    from tvault_git import web

    c = web.create_app(str(w.victim)).test_client()
    assert c.get("/", headers={"Host": "evil.example:8000"}).status_code == 400
    assert c.get(f"/download/{w.victim_entry}.safetensors", headers={"Host": "evil.example"}).status_code == 400
    for h in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert c.get("/", headers={"Host": h}).status_code == 200, h
    t = web.create_app(str(w.victim), host="0.0.0.0", token="s3cret").test_client()
    assert t.get("/", headers={"Host": "10.0.0.5"}).status_code == 403
    assert t.get("/?token=s3cret", headers={"Host": "10.0.0.5"}).status_code == 200
    assert t.get("/models", headers={"Host": "10.0.0.5"}).status_code == 200  # the cookie it set


def test_disk_full_outside_the_weight_write_is_storage_error(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """D17: the note write and the export hit ENOSPC: StorageError (exit 7), no partial output."""
    import torch

    import tvault_git as tvault
    from tvault_git.registry import notes

    def full(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(notes, "commit_to_ref", full)
    with pytest.raises(tvault.StorageError):
        log_in(w.victim, 0.3)
    monkeypatch.undo()
    monkeypatch.setattr(
        torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("[enforce fail] No space left on device"))
    )
    out = w.tmp / "o.pt"
    with pytest.raises(tvault.StorageError):
        tvault.export(w.victim_entry, out, repo=str(w.victim))
    assert not out.exists()


def test_post_commit_survives_a_bad_entry_and_applies_only_plausible_patches(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D18: a gitlink manifest on the parent does not stop the pass; unrelated dirty patches are not applied."""
    from tvault_git import hooks

    entry(w, (GITLINK, "5" * 40), seq=3)
    assert w.pull().returncode == 0
    (w.victim / "model.py").write_text((w.victim / "model.py").read_text() + "\n# tuned\n")
    dirty = log_in(w.victim, 0.4)
    others = []
    for i in range(5):  # other dirty entries whose code never becomes HEAD
        (w.victim / "helpers.py").write_text((w.victim / "helpers.py").read_text() + f"\n# try {i}\n")
        others.append(log_in(w.victim, 0.5))
        git(w.victim, "checkout", "-q", "helpers.py")
    git(w.victim, "commit", "-qam", "tuned")
    calls = []
    real = hooks.trained_tree
    monkeypatch.setattr(hooks, "trained_tree", lambda *a: calls.append(a) or real(*a))
    repo = pygit2.Repository(str(w.victim))
    assert hooks.post_commit(repo) == [dirty]
    assert len(calls) == 1  # only the patch that can give HEAD's tree was applied
