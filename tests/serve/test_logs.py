"""kubectl logs (k8sbook.serve.logs) with both kubectl versions: the kubelet's options and
``-f``, which follows on the serve clock until the container stops."""

from __future__ import annotations

import subprocess
import time

from k8sbook.serve import server
from tests.serve.conftest import Kubectl
from tests.serve.test_streams import phase, wait_for

#: the seed of the module's ``k8sbook serve`` (the ``srv`` fixture of conftest.py)
SERVE_SEED = 1


def start(srv: server.ModelServer, name: str, command: list[str]) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never",
                    "containers": [{"name": "app", "image": "busybox", "command": command}]}}
    with srv.model() as cluster:
        cluster.admin().create(pod)


def test_logs_options(srv: server.ModelServer, kubectl: Kubectl) -> None:
    name = "done-" + kubectl("version", "--client", "-o", "json").stdout.split('"minor": "')[1][:2]
    start(srv, name, ["sleep", "0.5"])
    wait_for(lambda: phase(srv, name) == "Succeeded")
    lines = ["app: started (attempt 0)", "app: exited with code 0"]
    assert kubectl("logs", name).stdout == "\n".join(lines) + "\n"
    assert kubectl("logs", name, "--tail=1").stdout == lines[1] + "\n"
    assert kubectl("logs", name, "--limit-bytes=4").stdout == "app:"
    assert kubectl("logs", name, "--since=1h").stdout == "\n".join(lines) + "\n"
    stamped = kubectl("logs", name, "--timestamps").stdout.splitlines()
    with srv.model() as cluster:
        held = cluster.apiserver.cached("pods", "default", name)
    finished = held["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    # the kubelet's RFC3339Nano times, from the line the shim wrote when the process exited
    assert stamped[1].startswith(finished[:-1]) and stamped[1].endswith(" " + lines[1])
    previous = kubectl("logs", name, "--previous")
    assert previous.stderr == ('Error from server (BadRequest): previous terminated container '
                               f'"app" in pod "{name}" not found\n')


def test_logs_follow_streams_until_the_container_exits(srv: server.ModelServer,
                                                       kubectl: Kubectl) -> None:
    name = "follow-" + kubectl("version", "--client", "-o", "json").stdout.split(
        '"minor": "')[1][:2]
    start(srv, name, ["sleep", "30"])
    wait_for(lambda: phase(srv, name) == "Running")
    follow = subprocess.Popen([kubectl.binary, "logs", "-f", name],  # type: ignore[attr-defined]
                              stdout=subprocess.PIPE, text=True, env=kubectl.env)  # type: ignore[attr-defined]
    time.sleep(1.0)
    assert follow.poll() is None  # still following: the container runs
    srv.advance(31)  # the container exits; the kubelet's next state check sees it stopped
    out, _ = follow.communicate(timeout=10)
    assert out == "app: started (attempt 0)\napp: exited with code 0\n"
    assert follow.returncode == 0 and phase(srv, name) == "Succeeded"
