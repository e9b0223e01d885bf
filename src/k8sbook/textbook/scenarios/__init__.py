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
from http import HTTPStatus
from typing import Any, Self

from k8sbook.client.network import DialError
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Message, Trace, component_of


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


class Outcome(str):
    """What the server answered one attempt, as text (so it prints and compares as before)
    with the parts as attributes: ``code`` (0 when no answer came: the dial failed),
    ``reason`` and ``message`` of the ``Status``.

    The text is ``"201 Created"`` (the code and HTTP's reason phrase) for a success whose
    answer was seen on the trace, ``"allowed"`` for a success when no trace was given,
    ``"403 Forbidden: <message>"`` for a refusal and ``"i/o timeout: <Go's error>"`` when the
    network gave no answer."""

    code: int
    reason: str
    message: str

    def __new__(cls, text: str, code: int = 0, reason: str = "", message: str = "") -> Self:
        self = super().__new__(cls, text)
        self.code, self.reason, self.message = code, reason, message
        return self

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300 or str(self) == "allowed"


def _answer(trace: Trace, mark: int) -> Message | None:
    """The last request to kube-apiserver recorded since ``mark`` (not a watch event)."""
    answers = [m for m in trace.since(mark)
               if component_of(m.dst) == "kube-apiserver" and m.result[:3].isdigit()]
    return answers[-1] if answers else None


def outcome(fn: Callable[[], Any], trace: Trace | None = None) -> Outcome:
    """Call ``fn`` and return what the server answered, as an :class:`Outcome`.

    A refusal is the ``Status`` the client raised (``code reason: message``); no answer is the
    network's error. A success, given the ``trace``, is the response code kube-apiserver sent
    to the last request ``fn`` made, read from the trace (never written here)."""
    mark = trace.mark() if trace is not None else 0
    try:
        fn()
    except StatusError as err:
        message = str(err.status.get("message", ""))
        reason = err.reason or ""
        text = f"{err.code} {reason}: {message}" if reason else f"{err.code}: {message}"
        return Outcome(text, err.code, reason, message)
    except DialError as err:
        return Outcome(f"{err.result}: {err}", 0, err.result, str(err))
    if trace is None:
        return Outcome("allowed")
    answer = _answer(trace, mark)
    if answer is None:
        return Outcome("allowed")
    code = int(answer.result[:3])
    return Outcome(f"{code} {HTTPStatus(code).phrase}", code)


# -- what several chapters read off a run --------------------------------------------------
Obj = dict[str, Any]


def apply(cluster: Cluster, objs: list[Obj]) -> None:
    """What ``kubectl apply -f`` of a component's manifests does here: create each object."""
    admin = cluster.admin()
    for o in objs:
        try:
            admin.create(o)
        except StatusError as err:
            if err.code != 409:
                raise


def pods(cluster: Cluster, namespace: str = "default") -> list[Obj]:
    items: list[Obj] = cluster.admin().list("pods", namespace)["items"]
    return items


def events(cluster: Cluster, namespace: str = "default") -> list[tuple[str, str, str, str]]:
    """(source, reason, object, message) of every Event, in the order written."""
    items = cluster.admin().list("events", namespace)["items"]
    items.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    return [(e["source"]["component"], e["reason"],
             f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}", e["message"])
            for e in items]


def user_of(cluster: Cluster, client: Any) -> str:
    """The user name kube-apiserver authenticates ``client``'s credentials as."""
    name: str = cluster.apiserver.authn.authenticate(client.credentials).name
    return name


SCENARIOS: dict[str, Scenario] = {}

#: Modules that define scenarios, one per chapter; imported on first use.
MODULES = ("hub", "networking", "controllers", "scheduling", "rescheduling", "cloud",
           "real_etcd", "node", "metrics", "fairness", "high_availability", "identity",
           "certificates", "scale")


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
