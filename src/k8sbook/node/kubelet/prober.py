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

from collections.abc import Callable
from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.node.container_runtime import CONTAINER_RUNNING
from k8sbook.node.kubelet.types import PodRecord, ProbeState

__all__ = ["USER_AGENT", "ProbeState", "ProberManager", "http_probe"]

USER_AGENT = "kube-probe/1.35"


def http_probe(port: int, path: str = "/healthz", *, period: int = 10, failure_threshold: int = 3,
               initial_delay: int = 0) -> dict[str, Any]:
    """A ``readinessProbe``/``livenessProbe`` value (``httpGet``) for a container spec."""
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "periodSeconds": period, "failureThreshold": failure_threshold,
            "successThreshold": 1, "timeoutSeconds": 1, "initialDelaySeconds": initial_delay}


class ProberManager:
    """``prober.Manager``: it receives what its workers use (``NewManager`` gets the status
    manager, the result managers, a prober with the event recorder): the network to dial
    from the node, the clock, the recorder, ``resync`` (a result change wakes the pod's
    worker), the pod records and ``running`` (whether the kubelet process still runs)."""

    def __init__(self, *, network: Network, clock: Clock, recorder: EventRecorder,
                 instance: str, node_name: str, address: str,
                 records: dict[str, PodRecord], resync: Callable[[str], None],
                 running: Callable[[], bool]) -> None:
        self.network = network
        self.clock = clock
        self.recorder = recorder
        self.instance = instance
        self.node_name = node_name
        self.address = address
        self.records = records
        self.resync = resync
        self.running = running
        self.timers: dict[str, Any] = {}

    def stop(self) -> None:
        for t in self.timers.values():
            t.cancel()
        self.timers.clear()

    def forget(self, rec: PodRecord) -> None:
        for slot in [s for s in self.timers if s.startswith(f"probe {rec.uid} ")]:
            self.timers.pop(slot).cancel()

    def start(self, pod: dict[str, Any], rec: PodRecord, state: ProbeState, cid: str) -> None:
        period = float(state.spec.get("periodSeconds", 10))
        delay = float(state.spec.get("initialDelaySeconds", 0))
        slot = f"probe {rec.uid} {state.container} {state.kind}"

        def tick() -> None:
            if not self.running() or rec.container_ids.get(state.container) != cid or \
                    self.records.get(rec.key) is not rec:
                return
            status = rec.containers.get(state.container)
            if status is not None and status["id"] == cid:
                if status["state"] != CONTAINER_RUNNING:
                    return  # the container exited: this worker ends
                if self.clock.now() - status["startedAt"] >= delay:
                    self.probe(pod, rec, state)
            self.timers[slot] = self.clock.call_later(period, tick, slot)
        old = self.timers.get(slot)
        if old is not None:
            old.cancel()  # a restarted container gets a fresh prober worker
        self.timers[slot] = self.clock.call_later(period if delay else 0.0, tick, slot)

    def probe(self, pod: dict[str, Any], rec: PodRecord, state: ProbeState) -> bool:
        """One HTTP probe; returns whether it succeeded."""
        http = state.spec.get("httpGet") or {}
        ip = (rec.sandbox or {}).get("network", {}).get("ip", "")
        port = int(http.get("port", 80))
        path = http.get("path", "/")
        url = f"http://{ip}:{port}{path}"
        timeout = float(state.spec.get("timeoutSeconds", 1))
        code: int | None = None
        why = ""
        try:
            resp: HTTPResponse = self.network.dial(
                self.instance, Address.tcp(ip, port),
                HTTPRequest("GET", path, headers=(("User-Agent", USER_AGENT),)),
                protocol="HTTP", verb="GET", resource=url,
                result=lambda r: f"{r.status} ({state.kind} probe)", via=self.node_name,
                source_ip=self.address, timeout=timeout)
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
            self.recorder.event(pod, "Warning", "Unhealthy",
                                f"{state.kind.capitalize()} probe failed: {why}")
        new = state.result
        if ok and state.successes >= state.spec.get("successThreshold", 1):
            new = True
        if not ok and state.failures >= state.spec.get("failureThreshold", 3):
            new = False
        if new != state.result:
            state.result = new
            self.resync(rec.key)
        return ok
