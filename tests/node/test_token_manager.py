"""The projected service-account token and its refresh (pkg/kubelet/token)."""

import random

from k8sbook.client.in_cluster import TOKEN_PATH
from k8sbook.cluster import Cluster
from k8sbook.core.clock import Clock
from k8sbook.node.token_manager import TokenManager
from tests.node.conftest import exec_in, run_pod


def token_requests(c):
    return [m for m in c.trace.filter(resource="serviceaccounts/token")
            if m.path == "kubelet->kube-apiserver" and m.result == "201"]


def test_token_written_at_start_and_refreshed_after_80_percent(node_a):
    c, _ = node_a
    c.admin().create({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": "default", "namespace": "default"}})
    run_pod(c)
    first = exec_in(c, "web", ["cat", TOKEN_PATH])["text"]
    assert c.apiserver.tokens.claims(first)["kubernetes.io"]["pod"]["name"] == "web" and len(token_requests(c)) == 1
    c.run_for(0.8 * 3607 - 60)  # before 80 % of the TTL (less the jitter): no refresh
    assert len(token_requests(c)) == 1
    c.run_for(130)  # past it: the next sync of the pod refreshes
    reqs = token_requests(c)
    assert len(reqs) == 2 and 0.8 * 3607 - 10 <= reqs[1].t - reqs[0].t <= 0.8 * 3607 + 61
    second = exec_in(c, "web", ["cat", TOKEN_PATH])["text"]
    assert second != first and c.apiserver.tokens.claims(second)["jti"] != \
        c.apiserver.tokens.claims(first)["jti"]


def test_requires_refresh_rules(node_a):
    """``requiresRefresh`` on a clock of its own: no cluster needs to run for a day."""
    _, k = node_a
    clock = Clock()
    tokens = TokenManager(k.tokens.client, clock, random.Random(0))
    tr = {"spec": {"expirationSeconds": 3607},
          "status": {"expirationTimestamp": clock.timestamp(clock.now() + 3607)}}
    assert not tokens.requires_refresh(tr)
    long = {"spec": {"expirationSeconds": 7 * 86400},
            "status": {"expirationTimestamp": clock.timestamp(clock.now() + 7 * 86400)}}
    clock.run_for(86400 - 11)  # younger than maxTTL (24 h) less the largest jitter
    assert not tokens.requires_refresh(long)
    clock.run_for(22)  # older than maxTTL, though far from expiring
    assert tokens.requires_refresh(long)


def test_no_service_account_no_token_but_the_pod_runs(node_a):
    c, _ = node_a
    pod = run_pod(c)
    assert pod["status"]["phase"] == "Running"
    assert [m.result for m in c.trace.filter(resource="serviceaccounts/token")] == \
        ["404 NotFound"]
    assert exec_in(c, "web", ["cat", TOKEN_PATH])["exitCode"] == 1


def test_the_admission_plugins_volume_is_mounted_as_the_pod_says():
    """With the ServiceAccount admission plugin on, the kubelet sets up the pod's own
    ``kube-api-access-*`` projected volume: the token (TokenRequest of 3607 s), ``ca.crt``
    from the ``kube-root-ca.crt`` ConfigMap the publisher wrote, and the namespace."""
    from k8sbook.core import pki

    c = Cluster(0, service_account_admission=True)
    c.add_kubelet("node-a").start()
    c.add_controller_manager(controllers=("root-ca-cert-publisher", "serviceaccount")).start()
    c.run_for(3)
    pod = run_pod(c)
    [vol] = pod["spec"]["volumes"]
    assert pod["status"]["phase"] == "Running"
    token = exec_in(c, "web", ["cat", TOKEN_PATH])["text"]
    claims = c.apiserver.tokens.claims(token)
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["kubernetes.io"]["pod"]["name"] == "web"
    # 3607 s asked for, extended to a year by --service-account-extend-token-expiration
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607
    ca = exec_in(c, "web", ["cat", TOKEN_PATH.replace("token", "ca.crt")])["text"]
    assert ca == pki.pem(pki.ca().certificate).decode()
    assert exec_in(c, "web", ["cat", TOKEN_PATH.replace("token", "namespace")])["text"] == \
        "default"
    k = c.components["kubelet/node-a"]
    d = k.volumes.projected_dir(pod["metadata"]["uid"], vol["name"])
    assert sorted(p for p in k.volumes.filesystem if p.startswith(d)) == \
        [f"{d}/ca.crt", f"{d}/namespace", f"{d}/token"]


def test_a_missing_root_ca_config_map_holds_the_pod_in_container_creating():
    c = Cluster(0, service_account_admission=True)
    c.add_kubelet("node-a").start()
    c.add_controller_manager(controllers=("serviceaccount",)).start()  # no publisher
    c.run_for(3)
    pod = run_pod(c)
    [vol] = pod["spec"]["volumes"]
    assert pod["status"]["phase"] == "Pending"
    events = c.admin().list("events", "default")["items"]
    assert any(e["reason"] == "FailedMount" and e["message"] ==
               f'MountVolume.SetUp failed for volume "{vol["name"]}" : configmap '
               '"kube-root-ca.crt" not found' for e in events)
