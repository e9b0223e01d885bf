"""The workload controllers through ``k8sbook serve``, driven by the real kubectl: rollout
status, undo, Jobs, DaemonSets, cascading and namespace deletion, as a learner types them.

kubectl 1.32 sends protobuf for ``kubectl create deployment|job|namespace``, so the objects are
created from manifests (``kubectl create -f``, JSON on the wire). Skipped without a kubectl,
failed without one in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from k8sbook.serve import server

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.slow

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: nginx:1.27}]}
"""
JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {name: hello}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:1.36, command: [sh, -c, "echo hello"]}]
"""
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


@pytest.fixture(scope="module")
def srv() -> Iterator[server.ModelServer]:
    with server.ModelServer(seed=0) as s:
        yield s


@pytest.fixture()
def kubectl(srv: server.ModelServer, tmp_path: Path) -> Kubectl:
    if KUBECTL is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is required in CI (.ci/run installs it)")
        pytest.skip("no kubectl binary on PATH")
    env = {**os.environ, "KUBECONFIG": str(srv.write_kubeconfig(tmp_path / "config"))}

    def run(*args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(KUBECTL), *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc
    return run


def test_rollout_status_set_image_and_undo(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", stdin=DEPLOYMENT)
    out = kubectl("rollout", "status", "deployment/web", "--timeout=40s").stdout
    assert 'deployment "web" successfully rolled out' in out
    kubectl("set", "image", "deployment/web", "app=nginx:1.28")
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
    kubectl("create", "-f", "-", stdin=JOB)
    kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=40s")
    job = json.loads(kubectl("get", "job", "hello", "-o", "json").stdout)
    assert job["status"]["succeeded"] == 2
    kubectl("create", "-f", "-", stdin=DAEMONSET)
    kubectl("rollout", "status", "daemonset/agent", "--timeout=40s")
    pods = json.loads(kubectl("get", "pods", "-l", "app=agent", "-o", "json").stdout)["items"]
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == \
        sorted(n["metadata"]["name"] for n in nodes)


def test_deleting_a_namespace_completes(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
    kubectl("create", "-n", "team", "-f", "-", stdin=DEPLOYMENT)
    kubectl("rollout", "status", "-n", "team", "deployment/web", "--timeout=40s")
    sa = json.loads(kubectl("get", "serviceaccount", "default", "-n", "team", "-o",
                            "json").stdout)
    assert sa["metadata"]["name"] == "default"
    kubectl("delete", "namespace", "team", "--timeout=60s")
    gone = kubectl("get", "namespace", "team", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_a_statefulset_rolls_out_with_stable_names(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", stdin=STATEFULSET)
    out = kubectl("rollout", "status", "statefulset/db", "--timeout=40s").stdout
    assert "partitioned roll out complete" in out or "roll out complete" in out
    pods = json.loads(kubectl("get", "pods", "-l", "app=db", "-o", "json").stdout)["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]
