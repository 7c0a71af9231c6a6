"""A retention policy for named models (``git tvault gc --keep-best N --by METRIC --keep-last K``).

Per model: keep the N best versions by METRIC (its direction: ``query.metric_direction``, the
rule ``find --best`` uses), the K latest, and every version an alias points at; the rest is what
the policy removes (the same removal as ``git tvault rm``: a ``removed`` line, so numbers never
shift). Unnamed entries have no versions and are never touched. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pygit2

from tvault_git.errors import InvalidInput, TvaultError
from tvault_git.registry import names
from tvault_git.registry.query import metric_direction
from tvault_git.spec.values import as_number


@dataclass
class Decision:
    name: str
    keep: list[tuple[names.Version, str]] = field(default_factory=list)  # (version, why kept)
    drop: list[names.Version] = field(default_factory=list)


def _here(v: names.Version) -> bool:
    try:
        _ = v.entry.manifest
    except TvaultError:  # indexed from a remote, objects not fetched: nothing here to judge or free
        return False
    return True


def value(v: names.Version, metric: str) -> float | None:
    """The version's METRIC: ``result``, else the manifest's metric of that name; None when absent."""
    m = v.entry.manifest
    raw = m.get("result") if metric == "result" else (m.get("metrics") or {}).get(metric)
    return as_number(raw)


def decide(
    repo: pygit2.Repository, keep_best: int | None, by: str | None, keep_last: int | None, name: str | None = None
) -> list[Decision]:
    """What the policy keeps and removes, per model (``name``: that model only)."""
    if keep_best is not None and not by:
        raise InvalidInput("--keep-best needs --by METRIC (result, or a metric name such as val_loss)")
    if by and keep_best is None:
        raise InvalidInput("--by says how to rank for --keep-best N; give --keep-best too")
    if keep_best is None and keep_last is None:
        raise InvalidInput("a retention policy needs --keep-best N --by METRIC and/or --keep-last K")
    for what, n in (("--keep-best", keep_best), ("--keep-last", keep_last)):
        if n is not None and n < 0:
            raise InvalidInput(f"{what} must be zero or more")
    models = [name] if name is not None else names.names(repo)
    out: list[Decision] = []
    seen_metric = False
    for model in models:
        live = [v for v in names.versions(repo, model) if not v.entry.removed]
        d = Decision(model)
        why: dict[str, str] = {}
        for v in live:
            if not _here(v):
                why[v.entry.id] = "objects not here"
            elif v.aliases:
                why.setdefault(v.entry.id, "alias " + ", ".join(v.aliases))
        if keep_last:
            for v in live[-keep_last:]:
                why.setdefault(v.entry.id, "latest")
        if keep_best and by:
            scored = [(x, v) for v in live if _here(v) and (x := value(v, by)) is not None]
            seen_metric = seen_metric or bool(scored)
            lower = metric_direction(by) == "min"
            scored.sort(key=lambda t: (t[0] if lower else -t[0], -t[1].number))  # ties: the later version
            for _, v in scored[:keep_best]:
                why.setdefault(v.entry.id, f"best {by}")
        for v in live:
            if v.entry.id in why:
                d.keep.append((v, why[v.entry.id]))
            else:
                d.drop.append(v)
        out.append(d)
    if keep_best and by and not seen_metric and any(d.keep or d.drop for d in out):
        raise InvalidInput(
            f"no version has {by!r}: use result or one of the metrics logged (git tvault show NAME@latest)"
        )
    return out
