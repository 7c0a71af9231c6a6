"""Tensor tables (``weights.json``, ``optimizer-state.json``): the document around the records.

A table says how its tensors were cut into blobs (``chunk_bytes``); readers take the size from the
table, never from their own constant, so a conforming writer that picks another size is read, not
called damaged. The value is bounded (docs/FORMAT.md, "Chunking") and only ever divides byte
ranges: allocation is sized by each record's validated shape and dtype, never by ``chunk_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tvault_git.errors import CorruptEntry
from tvault_git.spec.format import CHUNK_BYTES, MAX_TENSORS

MIN_CHUNK_BYTES = 1 << 10  # 1 KiB: smaller chunks only multiply objects
MAX_CHUNK_BYTES = 1 << 25  # 32 MiB: under the 50 MB blob size git hosts refuse


def check_chunk_bytes(value: Any, where: str) -> int:
    """``chunk_bytes`` as a reader accepts it: a power of two from 1 KiB to 32 MiB."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_CHUNK_BYTES <= value <= MAX_CHUNK_BYTES
        or value & (value - 1)
    ):
        raise CorruptEntry(
            f"{where}: chunk_bytes {value!r} is not a power of two from {MIN_CHUNK_BYTES} to {MAX_CHUNK_BYTES};"
            " the entry is damaged"
        )
    return value


@dataclass(frozen=True)
class TensorTable:
    """A parsed table: its chunk size and its records (name -> record, in state_dict order)."""

    chunk_bytes: int = CHUNK_BYTES
    tensors: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # optimizer-state.json only: plain state per param


def parse_table(doc: Any, where: str) -> TensorTable:
    """The table of a parsed JSON document; records themselves are checked one by one when read
    (``format.validate_tensor_record``), so listing a table never costs more than its size."""
    if not isinstance(doc, dict) or not isinstance(doc.get("tensors"), dict):
        raise CorruptEntry(f"{where} is malformed")
    if len(doc["tensors"]) > MAX_TENSORS:
        raise CorruptEntry(f"{where} lists {len(doc['tensors'])} tensors, over the {MAX_TENSORS} limit")
    values = doc.get("values", {})
    if not isinstance(values, dict):
        raise CorruptEntry(f"{where}: 'values' is not an object")
    return TensorTable(check_chunk_bytes(doc.get("chunk_bytes"), where), doc["tensors"], values)
