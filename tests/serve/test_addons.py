"""What k8sbook serve runs besides the control plane (k8sbook.serve.addons, .components,
.aggregated): Services get endpoints, kubectl top works, unknown images fail to pull."""

from __future__ import annotations

import time

from k8sbook.core.clock import EPOCH
from k8sbook.serve import server
from tests.serve.conftest import Kubectl
from tests.serve.test_streams import wait_for

#: the seed of the module's ``k8sbook serve`` (the ``srv`` fixture of conftest.py)
SERVE_SEED = 2


MANIFEST = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.27", ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


def test_the_components_and_addons_run(srv: server.ModelServer) -> None:
    assert srv.attached == ["kubelet", "kube-scheduler", "kube-controller-manager",
                            "endpointslice-controller", "kube-proxy", "coredns",
                            "metrics-server"]
    with srv.model() as cluster:
        assert {"kube-proxy/node-a", "kube-proxy/node-b"} <= set(cluster.components)
        svc = cluster.apiserver.cached("apiservices", "", "v1beta1.metrics.k8s.io")
    assert svc is not None and svc["spec"]["service"]["name"] == "metrics-server"


def test_a_service_gets_the_endpoints_of_its_ready_pods(srv: server.ModelServer,
                                                        kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", "-", stdin=MANIFEST).returncode == 0

    def endpoints() -> str:
        line = next(x for x in kubectl("describe", "svc", "web").stdout.splitlines()
                    if x.startswith("Endpoints:"))
        return line.split(":", 1)[1].strip()
    got = wait_for(lambda: endpoints() if endpoints() not in ("", "<none>") and
                   len(endpoints().split(",")) == 2 else None)
    with srv.model() as cluster:
        ips = sorted(f"{p['status']['podIP']}:80" for p in cluster.apiserver.cached_objects("pods")
                     if p["metadata"]["labels"].get("app") == "web")
    assert sorted(got.split(",")) == ips


def test_kubectl_top_reads_metrics_server_through_the_aggregator(srv: server.ModelServer,
                                                                 kubectl: Kubectl) -> None:
    srv.advance(31)  # two scrapes (15 s apart) of every node
    nodes = kubectl("top", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    assert [line.split()[0] for line in nodes.stdout.splitlines()] == ["NAME", "node-a",
                                                                       "node-b"]
    pods = kubectl("top", "pods", "-n", "kube-system")
    assert pods.returncode == 0, pods.stderr
    names = sorted(line.split()[0] for line in pods.stdout.splitlines()[1:])
    assert names[0].startswith("coredns-") and names[1] == "metrics-server-0"
    with srv.model() as cluster:
        start = cluster.trace.mark()
    kubectl("top", "nodes")
    with srv.model() as cluster:
        paths = set(cluster.trace.paths(cluster.trace.since(start)))
    assert {"kubectl->kube-apiserver", "kube-apiserver->metrics-server"} <= paths


def test_an_image_the_registry_lacks_fails_to_pull(srv: server.ModelServer,
                                                  kubectl: Kubectl) -> None:
    minor = kubectl("version", "--client", "-o", "json").stdout.split('"minor": "')[1][:2]
    name = f"typo-{minor}"
    assert kubectl("run", name, "--image=nginx:1.277").returncode == 0

    def waiting() -> str:
        with srv.model() as cluster:
            pod = cluster.apiserver.cached("pods", "default", name) or {}
        for s in pod.get("status", {}).get("containerStatuses", []):
            return str(s["state"].get("waiting", {}).get("reason", ""))
        return ""
    assert wait_for(lambda: waiting() in ("ErrImagePull", "ImagePullBackOff"))
    events = kubectl("describe", "pod", name).stdout
    assert ('Failed to pull image "nginx:1.277": rpc error: code = NotFound desc = failed to '
            'pull and unpack image "docker.io/library/nginx:1.277"') in events


def test_serve_starts_its_clock_at_the_wall_clock() -> None:
    with server.ModelServer(seed=0, realtime=False, components=False, wall_clock=True) as s:
        assert abs(EPOCH.timestamp() + s.cluster.clock.now() - time.time()) < 5
    with server.ModelServer(seed=0, realtime=False, components=False) as fixed:
        assert fixed.cluster.clock.now() == 0.0
