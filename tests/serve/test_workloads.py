"""The workload controllers through ``k8sbook serve``, driven by the real kubectl: rollout
status, undo, Jobs, DaemonSets, cascading and namespace deletion, as a learner types them.

Each test runs with both kubectl versions (``kubectl_bin``, from ``conftest.py``: skipped when
one is missing, failed in CI), each in a namespace of its own on one server. kubectl 1.32 and
newer send protobuf, which the server reads, so Deployments, Jobs and Namespaces are made with
``kubectl create deployment|job|namespace`` as a learner makes them; DaemonSets and
StatefulSets, which ``kubectl create`` has no subcommand for, from manifests.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from k8sbook.serve import server

pytestmark = pytest.mark.slow

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: busybox:1.36}]}
"""

STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: busybox:1.36}]}
"""

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture()
def kubectl(srv: server.ModelServer, kubectl_bin: str, tmp_path: Path,
            request: pytest.FixtureRequest) -> Kubectl:
    """kubectl ``kubectl_bin`` in a namespace of its own (``kubectl create namespace``), made
    for the test and the version: ``-n`` is put first in every command that names none."""
    env = {**os.environ, "KUBECONFIG": str(srv.write_kubeconfig(tmp_path / "config"))}
    version = request.node.callspec.params["kubectl_bin"].replace(".", "-")
    namespace = f"{request.node.originalname.removeprefix('test_')[:40].rstrip('_')}-{version}"
    namespace = namespace.replace("_", "-")

    def run(*args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        scoped = "-n" in args or "--all-namespaces" in args or args[:2] == ("create",
                                                                              "namespace")
        argv = [kubectl_bin, *([] if scoped else ["-n", namespace]), *args]  # before a --
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc
    out = run("create", "namespace", namespace).stdout.strip()
    assert out == f"namespace/{namespace} created"
    run.namespace = namespace  # type: ignore[attr-defined]
    return run


def test_rollout_status_set_image_and_undo(kubectl: Kubectl) -> None:
    created = kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    assert created.stdout.strip() == "deployment.apps/web created"
    out = kubectl("rollout", "status", "deployment/web", "--timeout=40s").stdout
    assert 'deployment "web" successfully rolled out' in out
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.28")
    kubectl("rollout", "status", "deployment/web", "--timeout=40s")
    history = kubectl("rollout", "history", "deployment/web").stdout
    assert "1 " in history and "2 " in history
    assert kubectl("rollout", "undo", "deployment/web").stdout.strip() == \
        "deployment.apps/web rolled back"
    kubectl("rollout", "status", "deployment/web", "--timeout=40s")
    d = json.loads(kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    kubectl("delete", "deployment", "web", "--cascade=foreground", "--timeout=40s")
    left = json.loads(kubectl("get", "replicasets,pods", "-l", "app=web", "-o", "json").stdout)
    assert left["items"] == []


def test_a_job_runs_to_completion_and_a_daemonset_covers_every_node(kubectl: Kubectl) -> None:
    created = kubectl("create", "job", "hello", "--image=busybox:1.36", "--", "sh", "-c",
                      "echo hello")
    assert created.stdout.strip() == "job.batch/hello created"
    kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=40s")
    job = json.loads(kubectl("get", "job", "hello", "-o", "json").stdout)
    assert job["status"]["succeeded"] == 1
    [pod] = json.loads(kubectl("get", "pods", "-l", "job-name=hello", "-o", "json").stdout
                       )["items"]
    assert "hello" in kubectl("logs", pod["metadata"]["name"]).stdout.splitlines()
    kubectl("create", "-f", "-", stdin=DAEMONSET)
    kubectl("rollout", "status", "daemonset/agent", "--timeout=40s")
    pods = json.loads(kubectl("get", "pods", "-l", "app=agent", "-o", "json").stdout)["items"]
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == \
        sorted(n["metadata"]["name"] for n in nodes)


def test_deleting_a_namespace_completes(kubectl: Kubectl) -> None:
    team = kubectl.namespace  # type: ignore[attr-defined]
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    kubectl("rollout", "status", "deployment/web", "--timeout=40s")
    sa = json.loads(kubectl("get", "serviceaccount", "default", "-o", "json").stdout)
    assert sa["metadata"]["name"] == "default"
    kubectl("delete", "namespace", team, "--timeout=60s")
    gone = kubectl("get", "namespace", team, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_a_statefulset_rolls_out_with_stable_names(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", stdin=STATEFULSET)
    out = kubectl("rollout", "status", "statefulset/db", "--timeout=40s").stdout
    assert "partitioned roll out complete" in out or "roll out complete" in out
    pods = json.loads(kubectl("get", "pods", "-l", "app=db", "-o", "json").stdout)["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]
