"""Named, deterministic runs of the model: what ``k8sbook trace NAME`` prints and what the
chapters draw.

The book's own code (no Kubernetes counterpart). A scenario is a function of a seed that
builds a :class:`~k8sbook.cluster.Cluster`, makes things happen in virtual time and returns a
:class:`ScenarioResult`: the cluster, the messages that matter, and the facts the chapter
asserts. Each chapter's scenarios live in their own module here and register themselves with
:func:`scenario`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.cluster import Cluster
from k8sbook.core.trace import Message


@dataclass
class ScenarioResult:
    name: str
    cluster: Cluster
    messages: list[Message]
    facts: dict[str, Any] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return sorted({m.path for m in self.messages})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "paths": self.paths(), "facts": self.facts,
                "messages": [m.to_dict() for m in self.messages]}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    chapter: str
    run: Callable[[int], ScenarioResult]


def outcome(fn: Callable[[], Any]) -> str:
    """Call ``fn``; "allowed" if it succeeds, else the refusal as ``code reason: message``."""
    from k8sbook.core.status import StatusError

    try:
        fn()
    except StatusError as err:
        return f"{err.code} {err.reason}: {err.status['message']}"
    return "allowed"


SCENARIOS: dict[str, Scenario] = {}

#: Modules that define scenarios, one per chapter; imported on first use.
MODULES = ("hub", "networking", "control_plane", "real_etcd", "node", "metrics")


def scenario(name: str, title: str, chapter: str) -> Callable[[Callable[[int], ScenarioResult]],
                                                              Callable[[int], ScenarioResult]]:
    """Register ``fn(seed) -> ScenarioResult`` under ``name``."""
    def register(fn: Callable[[int], ScenarioResult]) -> Callable[[int], ScenarioResult]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, title, chapter, fn)
        return fn
    return register


def _load() -> None:
    for mod in MODULES:
        importlib.import_module(f"{__name__}.{mod}")


def all_scenarios() -> list[Scenario]:
    _load()
    return [SCENARIOS[k] for k in sorted(SCENARIOS)]


def run(name: str, seed: int = 0) -> ScenarioResult:
    """Run the scenario ``name``; an unknown name is a KeyError listing the known ones."""
    _load()
    if name not in SCENARIOS:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    return SCENARIOS[name].run(seed)
