"""One row of chapter 13's per-path table, and how an answer becomes one of its cells.

The book's own code. A :class:`Row` holds what the caller authenticates with, who decides, what
admits, and two answers the receiving component gave: to the right caller and to the wrong
one. Every answer comes from the component (the apiserver's ``Status``, the kubelet's 403, a
gRPC error, the TLS handshake the network fabric ran, the cloud's error, a message on the
trace); nothing here writes one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from k8sbook.client.network import DialError
from k8sbook.controlplane.cloud import CloudError
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Message, Trace
from k8sbook.node.cri import RPCError
from k8sbook.textbook.scenarios import Outcome, outcome

#: the kinds of identity the rows use, in the order the chapter summarises them
KINDS = ("x509 client certificate", "service-account token", "bootstrap token",
         "mutual TLS (etcd CA)", "serving certificate + front-proxy certificate",
         "serving certificate (caBundle)", "cloud credentials", "Unix socket (file access)",
         "executed binary", "none")
#: kinds where the receiver checks a credential: the wrong one must be refused
CHECKED = KINDS[:7]


@dataclass(frozen=True)
class Answer:
    """What a component answered one attempt: its text, whether it served it, and its code
    (an HTTP status, a gRPC code, ``tls``, or the dial error's kind)."""

    text: str
    served: bool
    code: str


def answer(o: Outcome) -> Answer:
    """An apiserver-style :class:`~k8sbook.textbook.scenarios.Outcome` as an answer."""
    return Answer(str(o), o.ok, str(o.code) if o.code else o.reason)


def attempt(fn: Callable[[], Any], trace: Trace | None = None) -> Answer:
    """Run ``fn`` (one request by some caller) and return the component's answer: a Status,
    a dial or handshake error, a gRPC error, a cloud error; else what the trace shows."""
    try:
        return answer(outcome(fn, trace))
    except RPCError as err:
        return Answer(str(err), False, err.code)
    except CloudError as err:
        found = re.search(r": (\d{3}) ", str(err))
        return Answer(str(err), False, found.group(1) if found else "error")


def on_trace(trace: Trace, mark: int, path: str, served: Callable[[Message], bool],
             verb: str = "") -> Answer:
    """The last message on ``path`` (with ``verb``) since ``mark``, as the receiver answered
    it: ``<verb> <resource>: <result>``."""
    found = [m for m in trace.since(mark) if m.path == path and (not verb or m.verb == verb)]
    if not found:
        return Answer(f"no message on {path}", False, "none")
    m = found[-1]
    what = f"{m.verb} {m.resource}".strip()
    code = "tls" if "tls: " in m.result else m.result.split(" ", 1)[0]
    return Answer(f"{what}: {m.result}", served(m), code)


def dial_error(fn: Callable[[], Any]) -> Answer:
    """``fn`` dials; the network's (or the TLS handshake's) error, in Go's words."""
    try:
        fn()
    except DialError as err:
        return Answer(str(err), False, err.result if err.kind != "tls" else "tls")
    except StatusError as err:  # pragma: no cover - a component answered after all
        return Answer(f"{err.code}: {err.status.get('message', '')}", False, str(err.code))
    return Answer("served", True, "ok")


@dataclass(frozen=True)
class Row:
    """One catalogued path: its identity, authorizer and admission, and the two answers."""

    path: str
    kind: str
    authentication: str
    authorization: str
    admission: str
    right: str
    success: Answer
    wrong: str
    refusal: Answer
    #: what else the row shows, e.g. the apiserver refusing a callee's certificate
    also: str = ""

    def facts(self) -> dict[str, Any]:
        out = asdict(self)
        out["success"], out["refusal"] = self.success.text, self.refusal.text
        out["ok"] = self.success.served
        out["refused"] = not self.refusal.served
        out["refusal_code"] = self.refusal.code
        out["checked"] = self.kind in CHECKED
        return out
