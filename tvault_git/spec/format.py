"""The on-disk format's constants and its version check (see docs/FORMAT.md)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, cast

from tvault_git.errors import CorruptEntry, UnsupportedFormat
from tvault_git.spec.manifest import Manifest

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

# Reader limits (docs/FORMAT.md, "Limits"): a pulled registry is untrusted input. Sizes are checked
# from the object header before a blob is read, so a bomb costs its header, never its bytes.
MAX_JSON_DEPTH = 64  # nesting of arrays/objects inside a manifest value (tags)
MAX_INT_DIGITS = 20  # JSON integers: 64-bit values fit; longer ones are refused, not parsed
MAX_TEXT_BLOB = 16 * 1024 * 1024  # architecture.txt, each source file
MAX_PATCH = 64 * 1024 * 1024  # patch.diff
MAX_NOTE = 16 * 1024 * 1024  # one note of refs/notes/tvault (~150,000 entry lines on one commit)
MAX_ALIASES = 16 * 1024 * 1024  # the aliases blob
MAX_EXPANSION = 4  # declared tensor bytes may exceed the unique chunk bytes stored by this factor...
MIN_EXPANSION_BYTES = 256 * 1024 * 1024  # ...or by this many bytes, whichever is more (see tensors.check_declared)
HEX40 = re.compile(r"^[0-9a-f]{40}$")


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


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (the limit is {MAX_INT_DIGITS})")
    return int(text)


def parse_json(data: bytes, what: str) -> Any:
    """JSON from an untrusted blob: size, integer digits and nesting bounded; any failure is CorruptEntry."""
    if len(data) > MAX_JSON_BLOB:
        raise CorruptEntry(f"{what} is {len(data)} bytes, over the {MAX_JSON_BLOB} byte limit")
    try:
        return json.loads(data.decode("utf-8"), parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise CorruptEntry(f"{what} is not valid JSON ({str(e)[:200]}); the entry is damaged") from None
    except RecursionError:
        raise CorruptEntry(f"{what} nests deeper than this reader allows; the entry is damaged") from None


def _depth_ok(v: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``v`` nests at most ``limit`` arrays/objects deep (iterative: no recursion to exhaust)."""
    stack = [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, (dict, list)):
            if d > limit:
                return False
            stack.extend((y, d + 1) for y in (x.values() if isinstance(x, dict) else x))
    return True


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def manifest_problem(m: Any) -> str | None:
    """Why ``m`` is not a valid 1.x manifest (types, not presence: older writers left keys out), or None.

    Every reader goes through this, so the cache, the CLI and the web UI never meet a ``name`` that
    is an object or an ``author`` that is a string.
    """
    if not isinstance(m, dict):
        return f"{MANIFEST} is not an object"
    opt_str = ("created", "branch", "message", "kind")
    for k in opt_str:
        if m.get(k) is not None and not isinstance(m[k], str):
            return f"'{k}' is a {type(m[k]).__name__}, not a string"
    if m.get("created") is not None and len(m["created"]) > 64:
        return "'created' is not a timestamp"
    name = m.get("name")
    if name is not None and not (isinstance(name, str) and NAME_RE.match(name)):
        return "'name' is not a valid model name"
    commit = m.get("commit")
    if commit is not None and not (isinstance(commit, str) and HEX40.match(commit)):
        return "'commit' is not a 40-hex commit id"
    if m.get("dirty") is not None and not isinstance(m["dirty"], bool):
        return "'dirty' is not true or false"
    author = m.get("author")
    if author is not None:
        if not isinstance(author, dict):
            return "'author' is not an object"
        if any(author.get(k) is not None and not isinstance(author[k], str) for k in ("name", "email")):
            return "'author' name or email is not a string"
    unt = m.get("untracked")
    if unt is not None and not (isinstance(unt, list) and all(isinstance(x, str) for x in unt)):
        return "'untracked' is not a list of paths"
    if m.get("result") is not None and not _finite(m["result"]):
        return "'result' is not a finite number"
    for k in ("tags", "metrics", "model", "versions"):
        if m.get(k) is not None and not isinstance(m[k], dict):
            return f"'{k}' is not an object"
    if any(v is not None and not _finite(v) for v in (m.get("metrics") or {}).values()):
        return "a metric is not a finite number"
    model = m.get("model") or {}
    if model.get("class") is not None and not isinstance(model["class"], str):
        return "'model.class' is not a string"
    for k in ("parameters", "tensors", "bytes"):
        v = model.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            return f"'model.{k}' is not a count"
    if any(v is not None and not isinstance(v, str) for v in (m.get("versions") or {}).values()):
        return "a 'versions' value is not a string"
    if not _depth_ok(m.get("tags") or {}):
        return f"'tags' nest deeper than {MAX_JSON_DEPTH}"
    return None


def validate_manifest(m: Any, where: str) -> Manifest:
    """The manifest, or UnsupportedFormat (newer major) / CorruptEntry (malformed) naming the reason."""
    if not isinstance(m, dict):
        raise CorruptEntry(f"{where}: {MANIFEST} is not an object; the entry is damaged")
    check_version(m, where)
    why = manifest_problem(m)
    if why is not None:
        raise CorruptEntry(f"{where}: {MANIFEST}: {why}; the entry is damaged")
    return cast(Manifest, m)


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


def declared_limit(stored: int) -> int:
    """The most bytes a table may declare for ``stored`` unique chunk bytes without being asked."""
    return max(stored * MAX_EXPANSION, stored + MIN_EXPANSION_BYTES)


def check_declared(declared: int, stored: int, where: str, max_bytes: int | None) -> None:
    """Refuse tensors that declare far more bytes than they store before anything is allocated.

    Chunk lists may repeat a blob (equal chunks dedup), so 256 copies of one 32 MiB zero chunk
    (33 KB on the wire) declare 8 GiB. Repetition that large is refused unless the caller names a
    budget (``max_bytes=``, ``--allow-large``); a declared size over ``max_bytes`` is refused too.
    """
    if max_bytes is not None:
        if max_bytes >= 0 and declared > max_bytes:
            raise CorruptEntry(f"{where} declares {declared} bytes of tensors, over max_bytes={max_bytes}")
        return
    if declared > declared_limit(stored):
        raise CorruptEntry(
            f"{where} declares {declared} bytes of tensors but stores only {stored} distinct bytes "
            f"(repeated chunks); refusing to allocate it. If you trust it, pass max_bytes= (or --allow-large)"
        )
