"""The parsers only ever return data or raise the project's own errors (Hypothesis, bounded).

Each reader of untrusted registry text is fed arbitrary input and input built from the grammar's
own pieces (FORMAT.md), and must return a value or raise CorruptEntry/UnsupportedFormat (stored
data) or RefNotFound/InvalidInput (what a user typed): never a ValueError, TypeError,
RecursionError or anything else that would reach users as a traceback. Round trips check that
what writers render, readers parse back unchanged.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tvault_git.errors import CorruptEntry, InvalidInput, RefNotFound, UnsupportedFormat
from tvault_git.registry import names, notes
from tvault_git.registry.entries import _parse_manifest
from tvault_git.registry.names import AliasRecord
from tvault_git.registry.notes import NoteLine
from tvault_git.spec.format import validate_tensor_record
from tvault_git.spec.refs import EntryRef
from tvault_git.spec.tables import parse_table

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
STORED = (CorruptEntry, UnsupportedFormat)
TYPED = (RefNotFound, InvalidInput)

hex40 = st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
model_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", fullmatch=True)
alias_name = st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,63}", fullmatch=True)
vchar = st.from_regex(r"[!-~]{1,40}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
# Words the grammar uses, odd digits and separators: random text alone rarely looks like a note line.
piece = st.one_of(
    st.sampled_from(["model", "alias", "removed", "-", "result=", "result=-", "created=", ":", "@", "HEAD", "latest"]),
    hex40,
    st.integers(-5, 10**20).map(str),
    st.sampled_from(
        ["\u00b2", "\u0661", "\u0663", "1_0", "+1", "0x1", "1e5", "nan", "inf", "2026-01-01T00:00:00.000000Z"]
    ),
    st.text(max_size=12),
)
sep = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u2028", "\x00", "\x0b"])


@st.composite
def token_text(draw):
    parts = draw(st.lists(st.tuples(piece, sep), max_size=24))
    return "".join(a + b for a, b in parts)


# --- note lines -----------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.text(), token_text()))
def test_note_parse_never_fails(text):
    out = notes.parse(text)
    assert all(isinstance(n, NoteLine) and 0 <= n.seq < 10**18 and len(n.entry) == 40 for n in out)
    assert out == sorted(out, key=lambda n: (n.seq, n.entry))
    assert len({n.entry for n in out}) == len(out)


result_word = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**30), 10**30).map(repr),
)


@FUZZ
@given(st.integers(0, 10**18 - 1), hex40, st.none() | model_name, result_word, st.none() | vchar)
def test_note_line_round_trip(seq, entry, name, result, created):
    line = NoteLine(seq, entry, name, result, created)
    assert notes.parse(line.render() + "\n") == [line]


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 50), hex40), min_size=1, max_size=6), st.randoms())
def test_note_index_does_not_depend_on_line_order(pairs, rnd):
    lines = [NoteLine(s, e, None, None).render() for s, e in pairs]
    shuffled = lines[:]
    rnd.shuffle(shuffled)
    assert notes.parse("\n".join(lines)) == notes.parse("\n".join(shuffled))


# --- alias records --------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.text(), token_text()))
def test_alias_parse_never_fails(text):
    for (name, alias), r in names.parse_records(text).items():
        assert (r.name, r.alias) == (name, alias) and (r.entry is None or len(r.entry) == 40)


utc = st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(9999, 12, 31)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
)


@FUZZ
@given(model_name, alias_name, st.none() | hex40, utc, vchar)
def test_alias_record_round_trip(name, alias, entry, time, who):
    r = AliasRecord(name, alias, entry, time, who)
    recs = names.parse_records(r.render() + "\n")
    assert recs == {(name, alias): r}
    assert names.parse_records(names.render_records(recs)) == recs


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(["p", "q"]), st.none() | hex40, utc, vchar), min_size=1, max_size=6),
    st.randoms(),
)
def test_alias_winner_does_not_depend_on_record_order(recs, rnd):
    lines = [AliasRecord("m", a, e, t, w).render() for a, e, t, w in recs]
    shuffled = lines[:]
    rnd.shuffle(shuffled)
    assert names.parse_records("\n".join(lines)) == names.parse_records("\n".join(shuffled))


# --- manifests --------------------------------------------------------------------------------------------

format_value = st.one_of(
    st.from_regex(r"[0-9]{1,12}\.[0-9]{1,12}", fullmatch=True),
    st.sampled_from(["1.0", "2.0", "1", "1.0.0", "\u0661.0", "9" * 5000 + ".0"]),
    json_values,
)
manifest_keys = st.sampled_from(["format", "kind", "created", "name", "result", "tags", "model", "commit"])


@FUZZ
@given(st.dictionaries(manifest_keys | st.text(max_size=6), json_values, max_size=6), format_value)
@example({}, "9" * 5000 + ".0")
def test_manifest_parser_only_returns_or_raises_corrupt(doc, fmt):
    doc["format"] = fmt
    try:
        m = _parse_manifest(json.dumps(doc).encode(), "0" * 40)
    except STORED:
        return
    assert isinstance(m, dict) and m["format"] == fmt


@FUZZ
@given(st.one_of(st.binary(max_size=200), token_text().map(str.encode)))
@example(b"[" * 100_000)  # nesting a recursive decoder cannot follow
@example(b'{"format": "1.0", "n": 1' + b"0" * 5000 + b"}")  # an integer int() refuses to convert
@example(b'{"format": "1.0"}\xff')
@example(None)  # no manifest at all
def test_manifest_bytes(data):
    try:
        m = _parse_manifest(data, "0" * 40)
    except STORED:
        return
    assert isinstance(m, dict)


# --- tensor tables ----------------------------------------------------------------------------------------

record_value = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["float32", "uint8", "bool", "float128"]) | json_values,
        "shape": st.lists(st.integers(-2, 2**50), max_size=4) | json_values,
        "nbytes": st.integers(-1, 2**52) | json_values,
        "chunks": st.lists(hex40 | st.text(max_size=41), max_size=3) | json_values,
    },
)


@FUZZ
@given(st.one_of(record_value, json_values), st.sampled_from([1024, 1 << 25]))
def test_tensor_records_only_return_or_raise_corrupt(rec, chunk):
    try:
        _, _, nbytes, chunks = validate_tensor_record("w", rec, "entry x", chunk)
    except CorruptEntry:
        return
    assert nbytes >= 0 and len(chunks) == max(1, -(-nbytes // chunk))


@FUZZ
@given(
    st.one_of(json_values, st.fixed_dictionaries({"chunk_bytes": json_values | st.integers(), "tensors": json_values}))
)
def test_tables_only_return_or_raise_corrupt(doc):
    try:
        t = parse_table(doc, "entry x: weights.json")
    except CorruptEntry:
        return
    assert t.chunk_bytes & (t.chunk_bytes - 1) == 0 and isinstance(t.tensors, dict)


# --- entry refs -------------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.text(), token_text(), st.lists(piece, max_size=4).map("".join)))
@example("HEAD:\u00b2")  # a digit int() refuses
@example("mnist@\u00b2")
def test_entry_refs_only_return_or_raise_typed_errors(text):
    try:
        r = EntryRef.parse(text)
    except TYPED:
        return
    if r is None:
        return
    assert r.kind in ("id", "index", "name")
    if r.kind == "index":
        assert r.index >= 0 and r.rev
    elif r.kind == "name":
        assert r.selector and ":" not in r.text
    else:
        assert r.prefix == r.prefix.lower() and 4 <= len(r.prefix) <= 40


@FUZZ
@given(st.none() | st.integers() | st.binary() | st.lists(st.text()))
def test_entry_refs_of_other_types(value):
    with pytest.raises(InvalidInput):
        EntryRef.parse(value)  # type: ignore[arg-type]
