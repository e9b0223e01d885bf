"""Readiness and liveness probes: the kubelet dials the pod's IP.

Mirrors ``pkg/kubelet/prober`` (``prober_manager.go``, ``worker.go``, ``prober.go``) and
``pkg/probe/http`` (v1.35.0): one worker per container and probe, every ``periodSeconds``
after ``initialDelaySeconds`` from the container's start (as the kubelet's pod cache saw it);
an HTTP probe is a ``GET`` from the kubelet, on the node, to ``http://<pod IP>:<port><path>``
with ``User-Agent: kube-probe/1.35`` and the probe's ``timeoutSeconds``; 200-399 is success.
The result changes after ``successThreshold`` successes or ``failureThreshold`` failures, and
a change re-syncs the pod (a failed liveness probe restarts the container).

The probe is one dial through the network (path ``kubelet->pod``): a port nobody listens on
is a refused connection, an injected latency at or over the timeout a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError
from k8sbook.node.container_runtime import CONTAINER_RUNNING

if TYPE_CHECKING:
    from k8sbook.node.kubelet.kubelet import Kubelet
    from k8sbook.node.kubelet.pod_workers import PodRecord

USER_AGENT = "kube-probe/1.35"


def http_probe(port: int, path: str = "/healthz", *, period: int = 10, failure_threshold: int = 3,
               initial_delay: int = 0) -> dict[str, Any]:
    """A ``readinessProbe``/``livenessProbe`` value (``httpGet``) for a container spec."""
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "periodSeconds": period, "failureThreshold": failure_threshold,
            "successThreshold": 1, "timeoutSeconds": 1, "initialDelaySeconds": initial_delay}


@dataclass
class ProbeState:
    kind: str  # readiness | liveness
    container: str
    spec: dict[str, Any]
    result: bool
    successes: int = 0
    failures: int = 0


class ProberManager:
    def __init__(self, kubelet: Kubelet) -> None:
        self.k = kubelet
        self.timers: dict[str, Any] = {}

    def stop(self) -> None:
        for t in self.timers.values():
            t.cancel()
        self.timers.clear()

    def forget(self, rec: PodRecord) -> None:
        for slot in [s for s in self.timers if s.startswith(f"probe {rec.uid} ")]:
            self.timers.pop(slot).cancel()

    def start(self, pod: dict[str, Any], rec: PodRecord, state: ProbeState, cid: str) -> None:
        k = self.k
        period = float(state.spec.get("periodSeconds", 10))
        delay = float(state.spec.get("initialDelaySeconds", 0))
        slot = f"probe {rec.uid} {state.container} {state.kind}"

        def tick() -> None:
            if not k.running or rec.container_ids.get(state.container) != cid or \
                    k.records.get(rec.key) is not rec:
                return
            status = rec.containers.get(state.container)
            if status is not None and status["id"] == cid:
                if status["state"] != CONTAINER_RUNNING:
                    return  # the container exited: this worker ends
                if k.clock.now() - status["startedAt"] >= delay:
                    self.probe(pod, rec, state)
            self.timers[slot] = k.clock.call_later(period, tick, slot)
        old = self.timers.get(slot)
        if old is not None:
            old.cancel()  # a restarted container gets a fresh prober worker
        self.timers[slot] = k.clock.call_later(period if delay else 0.0, tick, slot)

    def probe(self, pod: dict[str, Any], rec: PodRecord, state: ProbeState) -> bool:
        """One HTTP probe; returns whether it succeeded."""
        k = self.k
        http = state.spec.get("httpGet") or {}
        ip = (rec.sandbox or {}).get("network", {}).get("ip", "")
        port = int(http.get("port", 80))
        path = http.get("path", "/")
        url = f"http://{ip}:{port}{path}"
        timeout = float(state.spec.get("timeoutSeconds", 1))
        code: int | None = None
        why = ""
        try:
            resp: HTTPResponse = k.network.dial(
                k.instance, Address.tcp(ip, port),
                HTTPRequest("GET", path, headers=(("User-Agent", USER_AGENT),)),
                protocol="HTTP", verb="GET", resource=url,
                result=lambda r: f"{r.status} ({state.kind} probe)", via=k.node_name,
                source_ip=k.address, timeout=timeout)
            code = resp.status
        except DialError as err:
            why = (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                   "awaiting headers)") if err.kind == "timeout" else f'Get "{url}": {err}'
        ok = code is not None and 200 <= code < 400
        if ok:
            state.successes, state.failures = state.successes + 1, 0
        else:
            state.failures, state.successes = state.failures + 1, 0
            if code is not None:
                why = f"HTTP probe failed with statuscode: {code}"
            k.recorder.event(pod, "Warning", "Unhealthy",
                             f"{state.kind.capitalize()} probe failed: {why}")
        new = state.result
        if ok and state.successes >= state.spec.get("successThreshold", 1):
            new = True
        if not ok and state.failures >= state.spec.get("failureThreshold", 3):
            new = False
        if new != state.result:
            state.result = new
            k.queue.add(rec.key)
        return ok
