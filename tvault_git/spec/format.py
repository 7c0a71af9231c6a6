"""The on-disk format's constants and its version check (see docs/FORMAT.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from tvault_git.errors import CorruptEntry, UnsupportedFormat

FORMAT_VERSION = "1.1"
FORMAT_MAJOR = 1

REF_PREFIX = "refs/tvault/entries/"
NOTES_REF = "refs/notes/tvault"
ALIASES_REF = "refs/tvault/aliases"  # commit chain of alias records (models.py)
ALIASES_FILE = "aliases"

MANIFEST = "tvault.json"
ARCHITECTURE = "architecture.txt"
WEIGHTS = "weights.json"
OPTIMIZER = "optimizer.json"
OPTIMIZER_STATE = "optimizer-state.json"
SCHEDULER = "scheduler.json"
STEPS = "steps.json"  # step metrics (1.1): registry/series.py
SOURCE_INDEX = "source.json"
CONFIGURATION = "configuration.json"  # 1.1: plain-data attributes of submodules
SOURCE_DIR = "source"
PATCH = "patch.diff"
BLOB_DIR = "tvault-blobs"

# What writers cut tensors into (the one definition; readers take each table's own ``chunk_bytes``,
# see spec/tables.py). No blob above this size: git hosts warn at 50 MB and reject at 100 MB.
CHUNK_BYTES = 32 * 1024 * 1024

# dtype name -> bytes per element. Names are torch's (``str(dtype)`` minus "torch.").
DTYPES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "complex128": 16,
    "complex64": 8,
    "complex32": 4,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "bool": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1,
    "float8_e8m0fnu": 1,
}

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_JSON_BLOB = 64 * 1024 * 1024
MAX_TENSORS = 1_000_000
MAX_DIMS = 64


def check_version(manifest: dict[str, Any], where: str) -> None:
    """Refuse a newer major version instead of misreading it."""
    ver = manifest.get("format")
    if not isinstance(ver, str) or not re.fullmatch(r"[0-9]{1,9}\.[0-9]{1,9}", ver):
        raise CorruptEntry(f"{where}: manifest has no valid 'format' version; the entry is damaged")
    major = int(ver.split(".")[0])
    if major > FORMAT_MAJOR:
        raise UnsupportedFormat(
            f"{where} uses registry format {ver}, newer than this tvault-git understands "
            f"({FORMAT_VERSION}); upgrade tvault-git (pip install -U tvault-git)"
        )


def parse_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_JSON_BLOB:
        raise CorruptEntry(f"{what} is {len(data)} bytes, over the {MAX_JSON_BLOB} byte limit")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError; so is a 5,000-digit int
        raise CorruptEntry(f"{what} is not valid JSON ({str(e)[:200]}); the entry is damaged") from None
    except RecursionError:
        raise CorruptEntry(f"{what} nests deeper than this reader allows; the entry is damaged") from None


def dumps(obj: Any, ordered: bool = False) -> bytes:
    """Stable, diffable JSON, one key per line; keys sorted unless their order means something
    (weights.json keeps state_dict order)."""
    return (json.dumps(obj, indent=1, sort_keys=not ordered, ensure_ascii=False, allow_nan=False) + "\n").encode()


def validate_tensor_record(name: str, rec: Any, where: str, chunk_bytes: int) -> tuple[str, list[int], int, list[str]]:
    """Check one tensor-table record before any byte is read; returns (dtype, shape, nbytes, chunks).

    ``chunk_bytes``: the table's own value (``spec.tables.check_chunk_bytes``), never a constant.
    """
    if not isinstance(rec, dict):
        raise CorruptEntry(f"{where}: tensor {name!r} record is not an object")
    dtype = rec.get("dtype")
    shape = rec.get("shape")
    chunks = rec.get("chunks")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CorruptEntry(f"{where}: tensor {name!r} has unknown dtype {dtype!r}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**48 for d in shape)
    ):
        raise CorruptEntry(f"{where}: tensor {name!r} has an invalid shape {shape!r}")
    numel = 1
    for d in shape:
        numel *= d
    nbytes = numel * DTYPES[dtype]
    if type(rec.get("nbytes")) is not int or rec["nbytes"] != nbytes:  # 256.0 and True are not sizes
        raise CorruptEntry(
            f"{where}: tensor {name!r} size {rec.get('nbytes')!r} does not match shape and dtype ({nbytes})"
        )
    if not isinstance(chunks, list) or not all(isinstance(c, str) and re.fullmatch(r"[0-9a-f]{40}", c) for c in chunks):
        raise CorruptEntry(f"{where}: tensor {name!r} has invalid chunk ids")
    expected = max(1, -(-nbytes // chunk_bytes))
    if len(chunks) != expected:
        raise CorruptEntry(f"{where}: tensor {name!r} has {len(chunks)} chunks, expected {expected}")
    return dtype, shape, nbytes, chunks
