"""Validate every entry of a real repository against docs/schema/ (read with the real git CLI)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tvault_git.spec.format import validate_tensor_record

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
FILES = {
    "tvault.json": "tvault.schema.json",
    "weights.json": "weights.schema.json",
    "source.json": "source.schema.json",
    "optimizer.json": "optimizer.schema.json",
    "optimizer-state.json": "optimizer-state.schema.json",
    "scheduler.json": "scheduler.schema.json",
    "steps.json": "steps.schema.json",
}


def _load() -> tuple[Registry, dict[str, dict]]:
    docs = {p.name: json.loads(p.read_text()) for p in SCHEMA_DIR.glob("*.schema.json")}
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
    return registry, docs


REGISTRY, SCHEMAS = _load()


def validator(schema_file: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[schema_file], registry=REGISTRY)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def validate_repo(repo: Path) -> dict[str, int]:
    """Check every JSON file of every entry against its schema, and every tensor record against the
    table's arithmetic (dtype x shape = nbytes, chunk count from the table's chunk_bytes, each chunk
    listed under tvault-blobs/ with its expected size). Returns how many files of each kind it checked."""
    seen = dict.fromkeys(FILES, 0)
    refs = _git(repo, "for-each-ref", "--format=%(refname)", "refs/tvault/entries/").split()
    assert refs, "no entries to validate"
    for ref in refs:
        eid = ref.rsplit("/", 1)[-1]
        listing = _git(repo, "ls-tree", "-r", "--name-only", eid).split("\n")
        for path, schema in FILES.items():
            if path not in listing:
                continue
            doc = json.loads(_git(repo, "show", f"{eid}:{path}"))
            errors = sorted(validator(schema).iter_errors(doc), key=lambda e: list(e.path))
            assert not errors, f"entry {eid[:10]} {path}: " + "; ".join(
                f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
            )
            seen[path] += 1
            if path in ("weights.json", "optimizer-state.json", "steps.json"):
                for name, rec in doc["tensors"].items():
                    _, _, nbytes, chunks = validate_tensor_record(name, rec, f"{eid[:10]} {path}", doc["chunk_bytes"])
                    for i, c in enumerate(chunks):
                        assert f"tvault-blobs/{c}" in listing, f"{eid[:10]}: chunk {c} of {name} not in tvault-blobs/"
                        size = int(_git(repo, "cat-file", "-s", c))
                        assert size == max(0, min(doc["chunk_bytes"], nbytes - i * doc["chunk_bytes"])), (name, i)
        assert seen["tvault.json"], f"entry {eid[:10]} has no tvault.json"
    return seen
