"""Conformance vectors: registries written by a second writer (vectors/make_vectors.py, git plumbing,
no tvault_git) as ``git fast-import`` streams, imported with the real git and read back through the
public API and the CLI. ``good.fi`` must read exactly as FORMAT.md says; ``bad.fi`` must be refused
entry by entry with the right error and exit code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

import tvault_git
from tests.helpers import BAD, G, git, import_vector, tvault
from tests.spec.schemas import validate_repo
from tvault_git.errors import CorruptEntry, UnsupportedFormat

W_BYTES = b"tvaultgitspec!!!"
LONG = (b"chunked tensor bytes; " * 69)[:1500]
MOM = (b"momentum buffer text " * 72)[:1500]


def f32(data: bytes, *shape: int) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(shape)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return import_vector(tmp_path_factory.mktemp("vec"), "good")


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return import_vector(tmp_path_factory.mktemp("vec"), "bad")


def test_ids_are_what_the_writer_computed(good, bad):
    """fast-import reproduces the writer's objects exactly: the notes' entry ids name real commits."""
    for repo, ids in ((good, G), (bad, BAD)):
        for oid in ids.values():
            assert git(repo, "cat-file", "-t", oid).stdout.strip() == "commit"


def test_the_vector_conforms_to_the_schemas(good):
    seen = validate_repo(good)
    assert seen["tvault.json"] == 3 and seen["optimizer-state.json"] == 1


def test_load_reads_every_tensor_bit_exactly(good):
    sd = tvault_git.load(G["e1"], repo=str(good))
    assert list(sd) == ["w", "b", "e"]  # state_dict order
    assert torch.equal(sd["w"], f32(W_BYTES, 2, 2))
    assert bytes(sd["b"].numpy()) == b"hello" and sd["b"].dtype == torch.uint8
    assert sd["e"].shape == (0,)
    assert tvault_git.load(G["e3"], repo=str(good))["steps"].item() == int.from_bytes(b"12345678", "little")


def test_the_tables_chunk_bytes_is_honoured(good):
    """e2 was cut into 1 KiB chunks: a reader whose own writer uses 32 MiB reads it all the same."""
    w = tvault_git.load(G["e2"], repo=str(good))["w"]
    assert bytes(w.numpy()) == LONG


REFS = [
    ("tiny@1", "e1"),  # c1 is the earlier instant
    ("tiny@2", "e2"),  # created 03:00+02:00 = 01:00Z: later as an instant, earlier as text
    ("tiny@latest", "e2"),
    ("tiny@best", "e2"),  # 0.75 > 0.5
    ("tiny@production", "e1"),
    ("tiny@staging", "e2"),  # the newer record wins over the removal
    (f"{G['t1'][:7]}:0", "e1"),  # the duplicate line of e1 counts once
    (f"{G['t1']}:1", "e2"),
    ("HEAD:0", "e3"),  # the flat-fanout note
    (":0", "e3"),
    (G["e1"][:8].upper(), "e1"),
]


@pytest.mark.parametrize("ref,want", REFS)
def test_entry_refs(good, ref, want):
    assert tvault_git.get(ref, repo=str(good))["id"] == G[want]


def test_cli_log_lists_the_visible_entries_only(good):
    out = tvault(good, "log").stdout
    for k in ("e1", "e2", "e3"):
        assert G[k][:7] in out
    assert "ghost" not in out and "fffffff" not in out  # the bad-fanout notes name nothing
    assert len(tvault(good, "find", "--json").stdout and json.loads(tvault(good, "find", "--json").stdout)) == 3


def test_cli_show_and_find(good):
    show = tvault(good, "show", "tiny@production").stdout
    assert G["e1"][:10] in show and "tiny" in show
    named = json.loads(tvault(good, "find", "--name", "tiny", "--json").stdout)
    assert sorted(r["id"] for r in named) == sorted([G["e1"], G["e2"]])
    high = json.loads(tvault(good, "find", "--min", "0.6", "--json").stdout)
    assert sorted(r["id"] for r in high) == sorted([G["e2"], G["e3"]])
    assert tvault(good, "find", "--name", "nothing", "--exit-code", check=False).returncode == 1


def test_optimizer_state_maps_back_by_parameter_name(good):
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(375))

    m = Tiny()
    opt = torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.1)
    tvault_git.load_optimizer_into(opt, "tiny@2", repo=str(good))
    st = opt.state[m.w]
    assert bytes(st["momentum_buffer"].numpy()) == MOM  # <param-name>.<state-key>, two 1 KiB chunks
    assert st["step"] == 3  # values[<param-name>][<state-key>]
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9


def test_diff_across_tables_of_different_chunk_sizes(good, monkeypatch):
    """A 32 MiB-chunk entry against the vector's 1 KiB-chunk one: values compared block by block."""
    monkeypatch.chdir(good)
    x = f32(LONG, 375).clone()
    x[300] = 0.0  # in the vector's second chunk
    m = torch.nn.Module()
    m.register_buffer("w", x)
    mine = tvault_git.log_all(m, repo=str(good))
    from tvault_git.diff import compute

    w = compute.diff_entries(str(good), G["e2"], mine.id, sections=["weights"])["weights"]
    (it,) = [i for i in w["items"] if i["name"] == "w"]
    assert it["status"] == "values" and it["changed_values"] == 1 and it["numel"] == 375
    assert it["max_abs"] == pytest.approx(abs(float(f32(LONG, 375)[300])), rel=1e-6)


BAD_CASES = [
    ("newer", UnsupportedFormat, 5, "newer than this tvault-git"),
    ("odd_chunk", CorruptEntry, 4, "chunk_bytes 1000"),
    ("bad_size", CorruptEntry, 4, "does not match shape"),
    ("short_chunk", CorruptEntry, 4, "chunk"),
]


@pytest.mark.parametrize("key,err,code,words", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_entries_are_refused_one_by_one(bad, tmp_path, key, err, code, words):
    with pytest.raises(err, match=words):
        tvault_git.load(BAD[key], repo=str(bad))
    p = tvault(bad, "export", BAD[key], str(tmp_path / "out.safetensors"), check=False)
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.safetensors").exists()


def _git_in(repo: Path, text: str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, input=text, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_tree_where_a_note_belongs_is_no_note(tmp_path):
    """Bad fanout at the very path of a listed commit: no note there, not a crash (AttributeError before)."""
    repo = import_vector(tmp_path, "good")
    blob = _git_in(repo, "x\n", "hash-object", "-w", "--stdin")
    inner = _git_in(repo, f"100644 blob {blob}\tx\n", "mktree")
    tree = _git_in(repo, f"040000 tree {inner}\t{G['t2']}\n", "mktree")
    git(repo, "update-ref", "refs/notes/tvault", _git_in(repo, "", "commit-tree", tree, "-m", "bad fanout"))
    p = tvault(repo, "show", "HEAD:0", check=False)
    assert p.returncode == 3 and "no entries" in p.stderr and "Traceback" not in p.stderr
