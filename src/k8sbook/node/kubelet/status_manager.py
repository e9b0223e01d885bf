"""The status manager: the PodStatus the kubelet reports, written to ``pods/status``.

Mirrors ``pkg/kubelet/status`` (``status_manager.go``) and ``generateAPIPodStatus`` of
``pkg/kubelet/kubelet_pods.go`` (v1.35.0): phase, container statuses (with the last
termination), and the conditions ``PodReadyToStartContainers``, ``Initialized``, ``Ready``,
``ContainersReady`` and ``PodScheduled``, each keeping its ``lastTransitionTime`` while its
status does not change. A status is written only when it changed.

Simplified: the status is sent as a JSON merge patch (the real status manager sends a
strategic merge patch with the same content).
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError
from k8sbook.node.container_runtime import CONTAINER_EXITED, CONTAINER_RUNNING, SANDBOX_READY
from k8sbook.node.kubelet.types import PodRecord


class StatusManager:
    """``status.manager``: like ``NewManager(kubeClient, ...)`` it receives the API client,
    and the clock and the node's IP (``hostIP``) the statuses it builds carry."""

    def __init__(self, *, client: Client, clock: Clock, host_ip: str) -> None:
        self.client = client
        self.clock = clock
        self.host_ip = host_ip

    def container_ready(self, rec: PodRecord, name: str, running: bool) -> bool:
        probe = rec.probes.get(("readiness", name))
        return running and (probe is None or probe.result)

    def api_status(self, pod: dict[str, Any], rec: PodRecord) -> dict[str, Any]:
        """``generateAPIPodStatus``: the PodStatus the kubelet reports for ``pod``."""
        spec = pod["spec"]
        statuses, running, waiting, stopped, succeeded = [], 0, 0, 0, 0
        ts = self.clock.timestamp
        for c in spec["containers"]:
            name = c["name"]
            cid = rec.container_ids.get(name)
            cs = rec.containers.get(name)
            if cs is not None and cs["id"] != cid:
                cs = None  # newest container not yet seen by the PLEG
            prev = rec.previous.get(name)
            out: dict[str, Any] = {"name": name, "image": c["image"], "imageID": "",
                                   "ready": False, "restartCount": 0, "started": False}

            def terminated(s: dict[str, Any]) -> dict[str, Any]:
                return {"terminated": {"exitCode": s["exitCode"], "reason": s["reason"],
                                       "startedAt": ts(s["startedAt"]),
                                       "finishedAt": ts(s["finishedAt"]),
                                       "containerID": f"containerd://{s['id']}"}}
            out["restartCount"] = rec.attempts.get(name, 0)
            if cs is not None:
                out["imageID"] = cs["imageRef"]
                out["containerID"] = f"containerd://{cs['id']}"
                out["restartCount"] = cs["metadata"]["attempt"]
            if cs is not None and cs["state"] == CONTAINER_RUNNING:
                out["state"] = {"running": {"startedAt": ts(cs["startedAt"])}}
                out["started"] = True
                out["ready"] = self.container_ready(rec, name, True)
                running += 1
                if prev is not None:
                    out["lastState"] = terminated(prev)
            elif cs is not None and cs["state"] == CONTAINER_EXITED:
                if name in rec.waiting and not rec.terminated:
                    reason, msg = rec.waiting[name]
                    out["state"] = {"waiting": {"reason": reason, "message": msg}}
                    out["lastState"] = terminated(cs)
                    stopped += 1
                else:
                    out["state"] = terminated(cs)
                    stopped += 1
                    succeeded += cs["exitCode"] == 0
            else:
                reason, msg = rec.waiting.get(name, ("ContainerCreating", ""))
                out["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg
                                                                  else {})}}
                if prev is not None:
                    out["lastState"] = terminated(prev)
                    stopped += 1
                else:
                    waiting += 1
            statuses.append(out)
        n = len(spec["containers"])
        if waiting:
            phase = "Pending"
        elif running:
            phase = "Running"
        elif stopped == n and (rec.terminated or spec.get("restartPolicy") == "Never" or
                               (spec.get("restartPolicy") == "OnFailure" and succeeded == n)):
            phase = "Succeeded" if succeeded == n else "Failed"
        elif stopped:
            phase = "Running"  # every container is restarting
        else:
            phase = "Pending"
        sandbox_ok = bool(rec.sandbox and rec.sandbox.get("state") == SANDBOX_READY
                          and not rec.terminated)
        unready = [s["name"] for s in statuses if not s["ready"]]
        ready = not unready and phase == "Running"
        msg = f"containers with unready status: [{' '.join(unready)}]"
        old = {c["type"]: c for c in (rec.last_status or {}).get("conditions", [])}

        def cond(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
            status = "True" if ok else "False"
            prev_c = old.get(type_)
            when = prev_c["lastTransitionTime"] if prev_c and prev_c["status"] == status \
                else ts()
            out = {"type": type_, "status": status, "lastProbeTime": None,
                   "lastTransitionTime": when}
            if reason:
                out["reason"] = reason
            if message:
                out["message"] = message
            return out
        done = phase in ("Succeeded", "Failed")
        conditions = [
            cond("PodReadyToStartContainers", sandbox_ok),
            cond("Initialized", True, "PodCompleted" if done else ""),
            cond("Ready", ready, "" if ready else ("PodCompleted" if done
                                                   else "ContainersNotReady"),
                 "" if ready or done else msg),
            cond("ContainersReady", ready, "" if ready else ("PodCompleted" if done
                                                             else "ContainersNotReady"),
                 "" if ready or done else msg),
            cond("PodScheduled", True),
        ]
        ip = (rec.sandbox or {}).get("network", {}).get("ip", "") if sandbox_ok else ""
        status: dict[str, Any] = {
            "phase": phase, "conditions": conditions, "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}], "startTime": rec.start_time,
            "containerStatuses": statuses,
        }
        if ip:
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        elif (pod.get("status") or {}).get("podIP"):
            keep = pod["status"]
            status["podIP"], status["podIPs"] = keep["podIP"], keep.get("podIPs")
        return status

    def write(self, pod: dict[str, Any], rec: PodRecord) -> None:
        status = self.api_status(pod, rec)
        if status == rec.last_status:
            return
        meta = pod["metadata"]
        try:
            self.client.patch("pods", meta["name"], {"metadata": {"uid": meta["uid"]},
                                                     "status": status},
                              meta["namespace"], subresource="status")
        except StatusError as err:
            if err.code == 404:
                return
            raise
        rec.last_status = status
