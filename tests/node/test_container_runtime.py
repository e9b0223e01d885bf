"""containerd's CRI server on its socket, runc and the streaming server, through the network."""

import pytest

from k8sbook.client.network import Address
from k8sbook.node.cri import CRIClient, RPCError
from tests.node.conftest import exec_in, run_pod


def test_cri_calls_dial_the_socket_and_errors_carry_the_grpc_code(node_a):
    c, _ = node_a
    cri = CRIClient("kubelet/node-a", c.network, "node-a")
    with pytest.raises(RPCError) as err:
        cri.container_status("nope")
    assert err.value.code == "NotFound"
    last = c.trace.messages[-1]
    assert (last.path, last.verb, last.result) == ("kubelet->container-runtime",
                                                   "ContainerStatus", "NotFound")
    c.components["machine/node-a"].runtime.stop()
    with pytest.raises(RPCError) as err:
        cri.list_containers()
    assert err.value.code == "Unavailable"
    assert "dial unix /run/containerd/containerd.sock: connect: no such file or directory" \
        in str(err.value)


def test_exec_output_and_exit_code_come_from_the_container(node_a):
    c, _ = node_a
    run_pod(c)
    m = c.trace.mark()
    out = exec_in(c, "web", ["sh", "-c", "echo hi; exit 3"])
    assert (out["text"], out["exitCode"]) == ("hi\n", 3)
    runc = [x for x in c.trace.since(m) if x.path == "container-runtime->oci-runtime"]
    assert [(x.verb, x.result) for x in runc] == [("exec", "exit 3")]
    stream = [x for x in c.trace.since(m) if x.verb == "POST" and x.src == "kubelet/node-a"]
    assert stream[0].resource.startswith("http://127.0.0.1:10010/exec/")
    # break runc: exec has nothing to run the process with
    c.network.close(Address.exec("node-a", "/usr/bin/runc"))
    with pytest.raises(Exception) as err:
        exec_in(c, "web", ["hostname"])
    assert "fork/exec /usr/bin/runc: no such file or directory" in str(err.value)


def test_files_the_runtime_mounted_and_the_environment(node_a):
    c, _ = node_a
    pod = run_pod(c)
    assert exec_in(c, "web", ["cat", "/etc/hostname"])["text"] == "web\n"
    hosts = exec_in(c, "web", ["cat", "/etc/hosts"])["text"]
    assert hosts.startswith("# Kubernetes-managed hosts file.\n")
    assert hosts.endswith(f"{pod['status']['podIP']}\tweb\n")
    env = exec_in(c, "web", ["printenv", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                             "HOSTNAME"])["text"]
    assert env == "10.96.0.1\n443\nweb\n"
    assert exec_in(c, "web", ["ps"])["exitCode"] == 126
