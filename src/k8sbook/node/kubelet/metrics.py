"""``GET /metrics/resource``: the container usage metrics-server scrapes from the kubelet.

Mirrors ``pkg/kubelet/metrics/collectors/resource_metrics.go`` (v1.35.0): the metric names,
labels and millisecond timestamps are the kubelet's; the *numbers* are the model's, not
measured: a running container burns CPU at the rate of its ``resources.requests.cpu`` (1m
without one) since it started, and its working set is its ``resources.requests.memory``
(8 MiB without one). Running containers are those the kubelet's pod cache (the PLEG) saw
running.
"""

from __future__ import annotations

from typing import Protocol

from k8sbook.api.quantity import parse_quantity
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.core.clock import EPOCH, Clock
from k8sbook.node.container_runtime import CONTAINER_RUNNING
from k8sbook.node.kubelet.types import PodRecord

MODEL_IDLE_CPU = 0.001
MODEL_IDLE_MEMORY = 8 * 2**20
class PodCache(Protocol):
    """What the collector reads of the kubelet (upstream, a ``SummaryProvider`` over the
    kubelet's pod cache): the clock, the pod records and the pods bound to the node."""

    clock: Clock
    records: dict[str, PodRecord]
    pod_informer: SharedIndexInformer


def resource_metrics(k: PodCache) -> str:
    now = k.clock.now()
    stamp = int((EPOCH.timestamp() + now) * 1000)
    cpu_lines: list[str] = []
    mem_lines: list[str] = []
    for key in sorted(k.records):
        rec = k.records[key]
        pod = k.pod_informer.get(key)
        if pod is None or rec.terminated:
            continue
        ns, name = key.split("/", 1)
        specs = {c["name"]: c for c in pod["spec"].get("containers", [])}
        for cname in sorted(rec.container_ids):
            status = rec.containers.get(cname)
            if status is None or status["id"] != rec.container_ids[cname] or \
                    status["state"] != CONTAINER_RUNNING or cname not in specs:
                continue
            req = (specs[cname].get("resources") or {}).get("requests") or {}
            rate = parse_quantity(req["cpu"]) if "cpu" in req else MODEL_IDLE_CPU
            mem = int(parse_quantity(req["memory"])) if "memory" in req else MODEL_IDLE_MEMORY
            labels = f'container="{cname}",namespace="{ns}",pod="{name}"'
            cpu_lines.append(f"container_cpu_usage_seconds_total{{{labels}}} "
                             f"{rate * (now - status['startedAt']):g} {stamp}")
            mem_lines.append(f"container_memory_working_set_bytes{{{labels}}} {mem} {stamp}")
    return "\n".join([
        ("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed "
         "by the container in core-seconds"),
        "# TYPE container_cpu_usage_seconds_total counter", *cpu_lines,
        ("# HELP container_memory_working_set_bytes [STABLE] Current working set of the "
         "container in bytes"),
        "# TYPE container_memory_working_set_bytes gauge", *mem_lines]) + "\n"
