"""``k8sbook serve`` hands every request to the model through the model's network: kubectl's
requests are dialled as ``kubectl->kube-apiserver``, watches travel on a network connection,
and faults injected into the network reach real clients."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from k8sbook.serve import server


@pytest.fixture()
def srv() -> Iterator[server.ModelServer]:
    with server.ModelServer(seed=0, components=False) as s:
        yield s


@pytest.fixture()
def kubeconfig(srv: server.ModelServer, tmp_path: Path) -> Path:
    return srv.write_kubeconfig(tmp_path / "config")


CONFIGMAP = ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, '
             '"data": {"k": "v"}}')


def run_kubectl(binary: str, kubeconfig: Path, *args: str,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True,
                          timeout=60,
                          env={**os.environ, "KUBECONFIG": str(kubeconfig)}, check=False)


def test_kubectl_requests_are_dialled_on_the_network(srv: server.ModelServer,
                                                      kubeconfig: Path, kubectl_bin: str) -> None:
    with srv.model() as cluster:
        mark = cluster.trace.mark()
    out = run_kubectl(kubectl_bin, kubeconfig, "create", "-f", "-", stdin=CONFIGMAP)
    assert out.returncode == 0, out.stderr
    with srv.model() as cluster:
        sent = [(m.path, m.verb, m.resource, m.name, m.result)
                for m in cluster.trace.since(mark) if m.src == "kubectl"]
        etcd = server.with_etcd_calls(cluster.trace.since(mark))
    assert ("kubectl->kube-apiserver", "CREATE", "configmaps", "default/cm", "201") in sent
    assert any(m.path == "kube-apiserver->etcd" for m in etcd)


def test_an_isolated_kubectl_gets_the_dial_error(srv: server.ModelServer,
                                                 kubeconfig: Path, kubectl_bin: str) -> None:
    with srv.model() as cluster:
        cluster.network.isolate("kubectl")
        revision = cluster.etcd.revision
    out = run_kubectl(kubectl_bin, kubeconfig, "create", "-f", "-", stdin=CONFIGMAP)
    assert out.returncode != 0
    assert "dial tcp 192.168.0.2:6443: i/o timeout" in out.stderr
    with srv.model() as cluster:
        assert cluster.etcd.revision == revision
        cluster.network.heal()
    assert run_kubectl(kubectl_bin, kubeconfig, "get", "configmap", "cm").returncode != 0  # never created


def test_a_watch_travels_on_a_connection_that_a_fault_cuts(srv: server.ModelServer,
                                                           kubeconfig: Path) -> None:
    api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    core = k8s_client.CoreV1Api(api)
    seen: list[str] = []
    opened = threading.Event()

    def watch() -> None:
        w = k8s_watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=60,
                              _request_timeout=60):
            seen.append(f"{event['type']} {event['object'].metadata.name}")
            opened.set()

    core.create_namespaced_config_map("default", {"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "first"}})
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    assert opened.wait(10)
    with srv.model() as cluster:
        (conn,) = [c for c in cluster.network.connections("http-client")]
        assert conn.path == "http-client->kube-apiserver"
        cluster.network.isolate("http-client")  # the fault cuts the connection
        assert conn.broken
    t.join(10)
    assert not t.is_alive() and seen == ["ADDED first"]
    with srv.model() as cluster:
        events = [m for m in cluster.trace if m.path == "http-client->kube-apiserver"
                  and m.verb == "ADDED"]
        assert [m.name for m in events] == ["default/first"]
