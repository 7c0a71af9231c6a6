"""Entry refs as users type them (docs/FORMAT.md, "Entry refs"): one parser for local and remote lookups.

Parsing is pure text: which of the three forms a ref is, never whether it names anything. The
registry (``registry.entries.resolve``) and the share layer (``share.sync``, resolving against a
remote's index) each look the parsed ref up in their own index and word their own "not found".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tvault_git.errors import InvalidInput, RefNotFound
from tvault_git.spec.format import NAME_RE

ID_PREFIX_RE = re.compile(r"[0-9a-fA-F]{4,40}")


@dataclass(frozen=True)
class EntryRef:
    """``<id-prefix>``, ``<commit-ish>:<index>`` or ``NAME@<selector>``, parsed."""

    kind: Literal["id", "index", "name"]
    text: str  # the ref as given, stripped
    prefix: str = ""  # id: lower-case hex, 4 to 40 digits
    rev: str = ""  # index: the commit-ish ("HEAD" when the ref starts with ':')
    index: int = 0  # index: the model index on that commit
    name: str = ""  # name: a model name
    selector: str = ""  # name: a version number, an alias, "latest" or "best" (registry.names.resolve)

    @classmethod
    def parse(cls, ref: str) -> EntryRef | None:
        """The ref's form, or None when it has none of them (the caller says where it looked).

        Raises RefNotFound for ``REV:X`` whose X is not a decimal index, the one malformed case
        worth its own message, and InvalidInput for a ref that is not a string.
        """
        if not isinstance(ref, str):
            raise InvalidInput(f"an entry ref must be a string, not {type(ref).__name__}")
        ref = ref.strip()
        if ":" in ref:
            rev, _, idx = ref.rpartition(":")
            if not (idx.isascii() and idx.isdigit()):  # not '²' or other Unicode digits int() refuses
                raise RefNotFound(f"bad entry ref {ref!r}: the part after ':' must be a model index (e.g. HEAD:0)")
            return cls("index", ref, rev=rev or "HEAD", index=int(idx))
        if "@" in ref:
            name, _, sel = ref.rpartition("@")
            if NAME_RE.fullmatch(name) and sel:
                return cls("name", ref, name=name, selector=sel)
            return None
        if ID_PREFIX_RE.fullmatch(ref):
            return cls("id", ref, prefix=ref.lower())
        return None
