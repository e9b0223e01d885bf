"""Attach to a container's main process (node/containerd_attach.py) through the kubelet."""

from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import KUBELET_CLIENT_CERT
from k8sbook.node.containerd_attach import reads_stdin


def test_the_main_shell_reads_stdin_and_its_exit_ends_the_container(node_a):
    c, k = node_a
    pod = objects.pod("shell", node_name="node-a",
                      containers=[objects.container("app", "busybox:1.36")])
    pod["spec"]["containers"][0].update(command=["sh"], stdin=True)
    pod["spec"]["restartPolicy"] = "Never"
    c.admin().create(pod)
    c.run_for(2)
    code, body = k.server.handle("POST", "/attach/default/shell/app", KUBELET_CLIENT_CERT,
                                 {"input": "1", "output": "1"},
                                 body={"stdin": "echo $HOSTNAME\nexit 4\n"})
    assert (code, body["stdout"], body["error"]) == (200, "shell\n",
                                                     {"metadata": {}, "status": "Success"})
    c.run_for(2)
    status = c.admin().get("pods", "shell", "default")["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 4
    # the main process's output went to the container's log as well
    assert k.read_container_log(k.record("default", "shell"), "app").splitlines()[1].endswith(
        "stdout F shell")


def test_only_a_shell_without_a_script_reads_stdin():
    assert reads_stdin(["sh"]) and reads_stdin(["/bin/bash"])
    assert not reads_stdin(["sh", "-c", "sleep 5"]) and not reads_stdin(["sleep", "30"])
