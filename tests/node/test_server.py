"""The kubelet's server on 10250 (pkg/kubelet/server): exec and its body contract."""

from urllib.parse import urlencode

from k8sbook.apiserver.kubelet_client import KUBELET_CLIENT_CERT
from tests.node.conftest import run_pod


def exec_path(*command: str) -> str:
    """The URL the apiserver sends (the command in the query, encoded)."""
    return "/exec/default/web/app?" + urlencode([("command", c) for c in command])


def test_exec_body_contract_and_not_found(node_a):
    c, k = node_a
    run_pod(c)
    code, body = k.server.handle("POST", exec_path("sh", "-c", "echo out; exit 2"),
                                 KUBELET_CLIENT_CERT, {})
    assert (code, body["text"], body["exitCode"], body["stdout"]) == (200, "out\n", 2, "out\n")
    # the error stream's Status, as ServeExec writes it for a non-zero exit code
    assert body["error"] == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: error executing command "
                   "[sh -c echo out; exit 2], exit code 2",
        "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}}
    # stdin reaches the command; stderr stays apart from stdout
    code, body = k.server.handle("POST", exec_path("sh"), KUBELET_CLIENT_CERT, {},
                                 body={"stdin": "echo hi\ncat /x\n"})
    missing = "cat: can't open '/x': No such file or directory\n"
    assert (body["stdout"], body["stderr"]) == ("hi\n", missing)
    assert body["exitCode"] == 1 and body["error"]["details"]["causes"][0]["message"] == "1"
    code, body = k.server.handle("GET", "/containerLogs/default/web/app",
                                 KUBELET_CLIENT_CERT, {})
    assert code == 200 and body["text"] == "app: started (attempt 0)\n"
    assert k.server.handle("POST", "/exec/default/ghost/app", KUBELET_CLIENT_CERT,
                           {})[0] == 404
    code, body = k.server.handle("POST", "/portForward/default/web", KUBELET_CLIENT_CERT,
                                 {"ports": "9999"})
    assert code == 500 and "connection refused" in body["message"]
