"""The book's catalog of communication paths and of the seed's claims, loaded from TOML.

This mirrors nothing in Kubernetes: it is the book's own data. ``data/paths.toml`` lists every
connection a running cluster uses (who opens it, to whom, on what protocol and port, as whom,
carrying what, and what breaks when it fails); ``data/claims.toml`` lists the 29 claims of the
seed Q&A page with a verdict, a correction and the paths each claim is about. Both files carry
their upstream sources, so every fact can be checked.

A path id is ``initiator->target`` over component names (see DEVELOPING.md): the initiator is
whoever opens the connection, so responses and watch events travel on the initiator's path.

The data is parsed once and cached; the objects returned are frozen.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "CLAIM_ORDER",
    "PLANES",
    "SEED_ONLY_NAMES",
    "VERDICTS",
    "Claim",
    "CommPath",
    "SeedEdge",
    "claim",
    "claims",
    "components",
    "path",
    "paths",
]

VERDICTS: tuple[str, ...] = (
    "accurate",
    "partly accurate",
    "inaccurate",
    "outdated",
)
"""The only verdicts a claim may carry."""

PLANES: tuple[str, ...] = ("control", "node", "data")
"""``control``: API and control traffic; ``node``: local calls between programs on one node;
``data``: application traffic of workloads."""

CLAIM_ORDER: tuple[str, ...] = (
    ("A1",) + tuple(f"B{i}" for i in range(1, 21)) + tuple(f"C{i}" for i in range(1, 9))
)
"""The seed's claim ids in the order the seed states them."""

SEED_ONLY_NAMES: frozenset[str] = frozenset({"rescheduler", "kube-dns", "cloud-api"})
"""Names the seed uses for things that are not (or no longer) cluster components.

``cloud-api`` is also a component of the catalog (the provider's API that
cloud-controller-manager calls); it is listed here because the seed's B16 edge points at it.
"""


@dataclass(frozen=True)
class SeedEdge:
    """One connection a seed claim asserts, and whether a current cluster has it."""

    from_: str
    to: str
    real: bool
    note: str = ""

    @property
    def id(self) -> str:
        """The edge as a path id, ``from->to``."""
        return f"{self.from_}->{self.to}"


@dataclass(frozen=True)
class Claim:
    """One claim of the seed page, checked."""

    id: str
    answer: int
    point: int
    claim: str
    quote_zh: str
    translation: str
    verdict: str
    correction: str
    sources: tuple[str, ...]
    paths: tuple[str, ...]
    seed_edges: tuple[SeedEdge, ...]
    chapter: str | None
    planned_chapter: str | None


@dataclass(frozen=True)
class CommPath:
    """One communication path: a kind of connection that ``initiator`` opens to ``target``."""

    id: str
    initiator: str
    target: str
    plane: str
    protocol: str
    port: int | None
    port_note: str
    identity: str
    flows: str
    on_failure: str
    claims: tuple[str, ...]
    sources: tuple[str, ...]
    chapter: str | None
    planned_chapter: str | None
    notes: str = ""


def _load(name: str) -> dict[str, Any]:
    text = resources.files("k8sbook.textbook").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _seed_edge(raw: dict[str, Any]) -> SeedEdge:
    return SeedEdge(
        from_=raw["from"], to=raw["to"], real=bool(raw["real"]), note=raw.get("note", "")
    )


@cache
def _claims() -> tuple[Claim, ...]:
    loaded = [
        Claim(
            id=raw["id"],
            answer=int(raw["answer"]),
            point=int(raw["point"]),
            claim=raw["claim"],
            quote_zh=raw["quote_zh"],
            translation=raw["translation"],
            verdict=raw["verdict"],
            correction=raw["correction"],
            sources=tuple(raw.get("sources", ())),
            paths=tuple(raw.get("paths", ())),
            seed_edges=tuple(_seed_edge(e) for e in raw.get("seed_edges", ())),
            chapter=raw.get("chapter"),
            planned_chapter=raw.get("planned_chapter"),
        )
        for raw in _load("claims.toml")["claim"]
    ]
    rank = {cid: i for i, cid in enumerate(CLAIM_ORDER)}
    return tuple(sorted(loaded, key=lambda c: (rank.get(c.id, len(rank)), c.id)))


@cache
def _paths() -> tuple[CommPath, ...]:
    loaded = [
        CommPath(
            id=raw["id"],
            initiator=raw["initiator"],
            target=raw["target"],
            plane=raw["plane"],
            protocol=raw["protocol"],
            port=raw.get("port"),
            port_note=raw.get("port_note", ""),
            identity=raw["identity"],
            flows=raw["flows"],
            on_failure=raw["on_failure"],
            claims=tuple(raw.get("claims", ())),
            sources=tuple(raw.get("sources", ())),
            chapter=raw.get("chapter"),
            planned_chapter=raw.get("planned_chapter"),
            notes=raw.get("notes", ""),
        )
        for raw in _load("paths.toml")["path"]
    ]
    return tuple(sorted(loaded, key=lambda p: p.id))


@cache
def _claim_index() -> dict[str, Claim]:
    return {c.id: c for c in _claims()}


@cache
def _path_index() -> dict[str, CommPath]:
    return {p.id: p for p in _paths()}


def claims() -> list[Claim]:
    """All seed claims, in seed order: A1, B1..B20, C1..C8."""
    return list(_claims())


def paths() -> list[CommPath]:
    """All communication paths, sorted by id."""
    return list(_paths())


def claim(id: str) -> Claim:
    """The claim with this id (``"B5"``); KeyError if the seed has no such claim."""
    try:
        return _claim_index()[id]
    except KeyError:
        raise KeyError(f"no seed claim {id!r}; claims are A1, B1..B20 and C1..C8") from None


def path(id: str) -> CommPath:
    """The path with this id (``"kubelet->kube-apiserver"``); KeyError if it is not listed."""
    try:
        return _path_index()[id]
    except KeyError:
        hint = "" if "->" in id else " (path ids look like 'initiator->target')"
        raise KeyError(f"no path {id!r} in the catalog{hint}") from None


def components() -> list[str]:
    """Every component name that appears as an initiator or target of a path, sorted."""
    return sorted({p.initiator for p in _paths()} | {p.target for p in _paths()})
