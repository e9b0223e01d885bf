"""What the kubelet's managers share about a pod: its record and its probes' states.

Mirrors the data the managers of ``pkg/kubelet`` pass each other (v1.35.0): the pod cache
entry (``kubecontainer.PodStatus`` of ``pkg/kubelet/container``) with the sync bookkeeping of
``pkg/kubelet/pod_workers.go``, and a probe worker's state (``pkg/kubelet/prober/worker.go``
with its ``pkg/kubelet/prober/results``). Imports nothing from the kubelet package, so every
manager can use it without reaching back into the kubelet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ProbeState:
    kind: str  # readiness | liveness
    container: str
    spec: dict[str, Any]
    result: bool
    successes: int = 0
    failures: int = 0


@dataclass(slots=True)
class PodRecord:
    """What the kubelet knows about one pod: its pod cache entry plus sync bookkeeping."""

    uid: str
    key: str
    sandbox_id: str = ""
    sandbox_attempt: int = -1
    sandbox: dict[str, Any] | None = None
    #: container name -> id of its newest container, and that container's status (cache)
    container_ids: dict[str, str] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    probes: dict[tuple[str, str], ProbeState] = field(default_factory=dict)
    start_time: str = ""
    last_status: dict[str, Any] | None = None
    terminated: bool = False
    sandbox_error: str = ""
    #: volume name -> (driver, volume handle, target path) of published CSI volumes
    mounted: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: projected volume name -> its host directory, once written
    projected: dict[str, str] = field(default_factory=dict)
    #: the host directory of the pod's service-account token volume, once written
    token_dir: str = ""
    #: when a TokenRequest last failed because the ServiceAccount does not exist
    token_missing_at: float | None = None
