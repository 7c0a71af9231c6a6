"""Table-driven cases from docs/FORMAT.md: note lines, alias records, entry refs, versions, tensor records.

Each table row is a rule of the spec; a row that fails names the rule it breaks.
"""

from __future__ import annotations

import pytest

from tvault_git.errors import CorruptEntry, InvalidInput, RefNotFound, UnsupportedFormat
from tvault_git.registry import names, notes
from tvault_git.registry.names import AliasRecord
from tvault_git.registry.notes import NoteLine
from tvault_git.spec.format import check_version, validate_tensor_record
from tvault_git.spec.refs import EntryRef
from tvault_git.spec.tables import check_chunk_bytes, parse_table

A = "58f97f0944b0c136530248dfeda49f38ebb9746c"
B = "0d6b9a5e0a3f2b1c4d5e6f708192a3b4c5d6e7f8"
C = "c" * 40
T = "2026-11-22T13:40:41.233817+00:00"

# --- note lines: render -> parse round trip (FORMAT.md "The note index", writing) -------------------

ROUND_TRIP = [
    NoteLine(0, A, "net", "0.5", T),
    NoteLine(3, A, None, None),
    NoteLine(7, A, "mnist-resnet.v2_b", "-1e-05"),
    NoteLine(12, A, "x", "3", "2026-11-22T13:40:41.233817-07:00"),
]


@pytest.mark.parametrize("line", ROUND_TRIP, ids=lambda n: n.render())
def test_note_line_round_trip(line):
    text = line.render()
    assert text.startswith(f"model {line.seq} {line.entry} ")
    assert notes.parse(text + "\n") == [line]


def test_note_line_rendering_is_the_abnf():
    assert NoteLine(0, A, None, None).render() == f"model 0 {A} - result=-"
    assert NoteLine(1, A, "net", "0.93", T).render() == f"model 1 {A} net result=0.93 created={T}"


# --- note lines: reading (what a note holds -> the entries in index order) --------------------------

PARSE = [
    ("two entries, index order is (seq, id)", f"model 1 {A} a result=-\nmodel 0 {B} b result=-\n", [(0, B), (1, A)]),
    (
        "equal seq after a merge: the entry id orders",
        f"model 0 {A} a result=-\nmodel 0 {B} b result=-\n",
        [(0, B), (0, A)],
    ),
    ("seq compares as an integer", f"model 10 {A} a result=-\nmodel 9 {B} b result=-\n", [(9, B), (10, A)]),
    ("unknown line kinds are ignored", f"removed-later {A}\n# comment\nmodel 0 {A} a result=-\n", [(0, A)]),
    ("unknown words are ignored", f"model 0 {A} a result=1 created={T} future=yes\n", [(0, A)]),
    ("no name and no result", f"model 0 {A}\n", [(0, A)]),
    ("upper-case entry id is not an entry id", f"model 0 {A.upper()} a result=-\n", []),
    ("short entry id", f"model 0 {A[:39]} a result=-\n", []),
    ("negative seq", f"model -1 {A} a result=-\n", []),
    ("seq with a sign", f"model +1 {A} a result=-\n", []),
    ("seq with an underscore", f"model 1_0 {A} a result=-\n", []),
    ("seq in non-ASCII digits", f"model \u0661 {A} a result=-\n", []),
    ("seq of 19 digits", f"model {'1' * 19} {A} a result=-\n", []),
    ("seq of 18 digits", f"model {'9' * 18} {A} a result=-\n", [(10**18 - 1, A)]),
    ("words are split at SP only: a TAB is part of a word", f"model\t0 {A} a result=-\n", []),
    ("lines are split at LF only: U+2028 does not start a line", f"x\u2028model 0 {A} a result=-\n", []),
    ("CRLF: the CR belongs to the last word", f"model 0 {A} a result=1\r\n", [(0, A)]),
    ("no final LF", f"model 0 {A} a result=-", [(0, A)]),
    ("empty note", "", []),
]


@pytest.mark.parametrize("why,text,want", PARSE, ids=[c[0] for c in PARSE])
def test_note_parse(why, text, want):
    assert [(n.seq, n.entry) for n in notes.parse(text)] == want, why


DUPLICATES = [
    # (why, note text, expected (seq, name, result, created) of entry A)
    ("identical lines count once", f"model 0 {A} a result=1\nmodel 0 {A} a result=1\n", (0, "a", "1", None)),
    ("the smallest seq wins", f"model 4 {A} late result=2\nmodel 1 {A} early result=1\n", (1, "early", "1", None)),
    (
        "created= is taken from another line of the entry",
        f"model 1 {A} a result=1\nmodel 5 {A} a result=1 created={T}\n",
        (1, "a", "1", T),
    ),
    (
        "created= of the winning line is kept",
        f"model 1 {A} a result=1 created={T}\nmodel 0 {A} b result=2\n",
        (0, "b", "2", T),
    ),
    ("result=- is no result", f"model 0 {A} a result=-\n", (0, "a", None, None)),
    ("name - is no name", f"model 0 {A} - result=0.5\n", (0, None, "0.5", None)),
    ("created= without a value is no created", f"model 0 {A} a result=- created=\n", (0, "a", None, None)),
    ("created= anywhere after the result", f"model 0 {A} a result=- x=1 created={T}\n", (0, "a", None, T)),
]


@pytest.mark.parametrize("why,text,want", DUPLICATES, ids=[c[0] for c in DUPLICATES])
def test_note_duplicates_and_words(why, text, want):
    (n,) = notes.parse(text)
    assert (n.seq, n.name, n.result, n.created) == want, why


def test_union_merge_keeps_every_line_and_the_order_is_the_same_on_both_sides():
    ours = f"model 0 {A} a result=1\n"
    theirs = f"model 0 {B} b result=2\n"
    ab, ba = notes.union_text(ours, theirs), notes.union_text(theirs, ours)
    assert ab != ba  # line order differs
    assert notes.parse(ab) == notes.parse(ba)  # the index does not
    assert [n.entry for n in notes.parse(ab)] == sorted([A, B])


# --- alias records -----------------------------------------------------------------------------------

TIME1 = "2026-11-22T13:41:02.118004Z"
TIME2 = "2026-11-23T09:00:00.000000Z"


def rec(name="mnist", alias="production", entry=A, time=TIME1, who="ada@example.com"):
    return AliasRecord(name, alias, entry, time, who)


@pytest.mark.parametrize("r", [rec(), rec(entry=None), rec(who="-"), rec(name="m.v-2_x", alias="Prod.1")])
def test_alias_round_trip(r):
    recs = names.parse_records(r.render() + "\n")
    assert recs == {(r.name, r.alias): r}
    assert names.render_records(recs) == r.render() + "\n"


ALIASES = [
    # (why, text, {(name, alias): entry or None})
    ("the newer record wins", f"alias m p {A} {TIME1} a\nalias m p {B} {TIME2} b\n", {("m", "p"): B}),
    ("order in the blob does not matter", f"alias m p {B} {TIME2} b\nalias m p {A} {TIME1} a\n", {("m", "p"): B}),
    ("a removal is a record like any other", f"alias m p {A} {TIME1} a\nalias m p - {TIME2} b\n", {("m", "p"): None}),
    ("equal times: the larger line text wins", f"alias m p {A} {TIME1} a\nalias m p {B} {TIME1} a\n", {("m", "p"): A}),
    ("who may contain spaces when read", f"alias m p {A} {TIME1} Ada Lovelace\n", {("m", "p"): A}),
    ("unknown lines are ignored", f"label m p {A} {TIME1} a\nalias m p {A} {TIME1} a\n", {("m", "p"): A}),
    ("too few words", f"alias m p {A} {TIME1}\n", {}),
    ("upper-case entry id", f"alias m p {A.upper()} {TIME1} a\n", {}),
    ("a time that is not fixed-width UTC", f"alias m p {A} 2026-11-22T13:41:02Z a\n", {}),
    ("a time in non-ASCII digits", f"alias m p {A} \u0662026-11-22T13:41:02.118004Z a\n", {}),
    ("a time with an offset", f"alias m p {A} 2026-11-22T13:41:02.118004+01:00 a\n", {}),
    ("a bad model name", f"alias -m p {A} {TIME1} a\n", {}),
    ("a bad alias name", f"alias m 1p {A} {TIME1} a\n", {}),
    ("words are split at SP only", f"alias\tm p {A} {TIME1} a\n", {}),
    ("lines are split at LF only", f"alias m p {A} {TIME1} a\u2028alias m q {A} {TIME1} a\n", {("m", "p"): A}),
]


@pytest.mark.parametrize("why,text,want", ALIASES, ids=[c[0] for c in ALIASES])
def test_alias_records(why, text, want):
    assert {k: r.entry for k, r in names.parse_records(text).items()} == want, why


def test_alias_render_sorts_by_name_then_alias():
    recs = names.parse_records(f"alias z a {A} {TIME1} w\nalias m q {A} {TIME1} w\nalias m b {A} {TIME1} w\n")
    assert [line.split(" ")[1:3] for line in names.render_records(recs).splitlines()] == [
        ["m", "b"],
        ["m", "q"],
        ["z", "a"],
    ]


# --- entry refs -------------------------------------------------------------------------------------

REFS = [
    ("HEAD:0", ("index", "HEAD", 0)),
    (":2", ("index", "HEAD", 2)),
    ("abc123:10", ("index", "abc123", 10)),
    ("main~1:0", ("index", "main~1", 0)),
    ("a:b:3", ("index", "a:b", 3)),
    ("  HEAD:0\n", ("index", "HEAD", 0)),
    ("mnist@3", ("name", "mnist", "3")),
    ("mnist@production", ("name", "mnist", "production")),
    ("a@b@latest", None),  # the part before the last '@' is not a model name
    ("mnist@", None),
    ("@best", None),
    ("-x@best", None),
    ("58F97F09", ("id", "58f97f09")),
    (A, ("id", A)),
    ("abc", None),  # fewer than 4 hex digits
    ("g" * 10, None),
    (A + "0", None),  # 41 digits
    ("", None),
]


def _shape(r: EntryRef | None):
    if r is None:
        return None
    return {"index": (r.kind, r.rev, r.index), "name": (r.kind, r.name, r.selector), "id": (r.kind, r.prefix)}[r.kind]


@pytest.mark.parametrize("text,want", REFS, ids=[repr(t) for t, _ in REFS])
def test_entry_ref_forms(text, want):
    assert _shape(EntryRef.parse(text)) == want


@pytest.mark.parametrize("text", ["HEAD:x", "HEAD:", "HEAD:-1", "HEAD:1.0", "HEAD:\u00b2", "HEAD:\u0663"])
def test_bad_index_refs_are_refused(text):
    with pytest.raises(RefNotFound, match="bad entry ref"):
        EntryRef.parse(text)


def test_a_ref_must_be_a_string():
    with pytest.raises(InvalidInput):
        EntryRef.parse(None)  # type: ignore[arg-type]


# --- manifest version ---------------------------------------------------------------------------------

VERSIONS = [
    ("1.0", None),
    ("1.7", None),
    ("0.9", None),
    ("2.0", UnsupportedFormat),
    ("10.0", UnsupportedFormat),
    ("1", CorruptEntry),
    ("1.0.1", CorruptEntry),
    ("v1.0", CorruptEntry),
    ("1.0\n", CorruptEntry),
    ("\u0661.0", CorruptEntry),  # Arabic-Indic one: DIGIT is ASCII
    ("9" * 5000 + ".0", CorruptEntry),  # a number int() refuses to parse
    (1.0, CorruptEntry),
    (None, CorruptEntry),
]


@pytest.mark.parametrize("ver,err", VERSIONS, ids=[repr(v)[:20] for v, _ in VERSIONS])
def test_manifest_version(ver, err):
    if err is None:
        check_version({"format": ver}, "entry x")
    else:
        with pytest.raises(err):
            check_version({"format": ver}, "entry x")


# --- tensor records and chunking ----------------------------------------------------------------------

CH = "5d3a1f2b0c9e8d7f6a5b4c3d2e1f0a9b8c7d6e5f"


def good(**kw):
    r = {"dtype": "float32", "shape": [16, 4], "nbytes": 256, "chunks": [CH]}
    r.update(kw)
    return r


RECORD_REJECTS = [
    ("not an object", [1, 2]),
    ("unknown dtype", good(dtype="float128")),
    ("dtype not a string", good(dtype=["float32"])),
    ("shape not a list", good(shape="16x4")),
    ("negative dim", good(shape=[-16, -4])),
    ("bool dim", good(shape=[True, 4], nbytes=16)),
    ("float dim", good(shape=[16.0, 4])),
    ("dim of 2^48", good(shape=[2**48], nbytes=2**50)),
    ("65 dims", good(shape=[1] * 65, nbytes=4)),
    ("nbytes off by one", good(nbytes=255)),
    ("nbytes missing", {"dtype": "float32", "shape": [1], "chunks": [CH]}),
    ("nbytes a float", good(nbytes=256.0)),
    ("upper-case chunk id", good(chunks=[CH.upper()])),
    ("short chunk id", good(chunks=[CH[:39]])),
    ("chunks not a list", good(chunks=CH)),
    ("too many chunks", good(chunks=[CH, CH])),
    ("no chunk at all", good(shape=[0], nbytes=0, chunks=[])),
]


@pytest.mark.parametrize("why,r", RECORD_REJECTS, ids=[c[0] for c in RECORD_REJECTS])
def test_validate_tensor_record_rejects(why, r):
    with pytest.raises(CorruptEntry):
        validate_tensor_record("w", r, "entry x", 33554432)


RECORD_ACCEPTS = [
    ("the example", good(), 33554432),
    ("scalar", good(shape=[], nbytes=4), 33554432),
    ("empty tensor: one empty chunk", good(shape=[0, 4], nbytes=0), 33554432),
    ("bool is one byte", good(dtype="bool", shape=[3], nbytes=3), 33554432),
    ("complex32 is four bytes", good(dtype="complex32", shape=[2], nbytes=8), 33554432),
    ("1 KiB chunks: 256 bytes in one", good(), 1024),
    ("1 KiB chunks: 4100 bytes in five", good(shape=[1025], nbytes=4100, chunks=[CH] * 5), 1024),
]


@pytest.mark.parametrize("why,r,chunk", RECORD_ACCEPTS, ids=[c[0] for c in RECORD_ACCEPTS])
def test_validate_tensor_record_accepts(why, r, chunk):
    dtype, shape, nbytes, chunks = validate_tensor_record("w", r, "entry x", chunk)
    assert (dtype, shape, nbytes, chunks) == (r["dtype"], r["shape"], r["nbytes"], r["chunks"])


def test_chunk_count_follows_the_tables_chunk_bytes():
    r = good(shape=[1025], nbytes=4100, chunks=[CH] * 5)
    with pytest.raises(CorruptEntry, match="expected 1"):
        validate_tensor_record("w", r, "entry x", 33554432)


@pytest.mark.parametrize("v", [1024, 2048, 1 << 20, 33554432])
def test_chunk_bytes_accepted(v):
    assert check_chunk_bytes(v, "t") == v
    assert parse_table({"chunk_bytes": v, "tensors": {}}, "t").chunk_bytes == v


@pytest.mark.parametrize(
    "v", [None, 0, 1, 512, 1000, 1023, 3072, 33554433, 1 << 26, 50_000_000, -1024, 1024.0, True, "1024"]
)
def test_chunk_bytes_refused(v):
    with pytest.raises(CorruptEntry, match="chunk_bytes"):
        check_chunk_bytes(v, "t")


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"chunk_bytes": 1024},
        {"chunk_bytes": 1024, "tensors": []},
        {"tensors": {}},
        {"chunk_bytes": 1024, "tensors": {}, "values": []},
    ],
)
def test_malformed_tables(doc):
    with pytest.raises(CorruptEntry):
        parse_table(doc, "t")
