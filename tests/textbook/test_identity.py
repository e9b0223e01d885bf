"""Chapter 13's scenarios: every catalogued path has a row, each with the right identity let
in and the wrong one refused by the component itself (or, where nothing checks, served)."""

from __future__ import annotations

from typing import Any

import pytest

from k8sbook.textbook import catalog, scenarios
from k8sbook.textbook.scenarios import identity


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return scenarios.run("identity-per-path").facts["rows"]


def by_path(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["path"], []).append(r)
    return out


def test_every_catalogued_path_has_a_row(rows: list[dict[str, Any]]) -> None:
    assert set(by_path(rows)) == {p.id for p in catalog.paths()}
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    assert {r["kind"] for r in rows} <= set(identity.KINDS)


def test_every_checked_row_lets_the_right_caller_in_and_refuses_the_wrong_one(
        rows: list[dict[str, Any]]) -> None:
    checked = [r for r in rows if r["checked"]]
    assert len(checked) == 22 and len(rows) == len(catalog.paths()) + 1  # + bootstrap
    for r in checked:
        assert r["ok"] and r["refused"], r


def test_refusals_are_the_components_own_words(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        kind, refusal = r["kind"], r["refusal"]
        if r["path"].endswith("->kube-apiserver"):
            assert refusal.startswith("403 Forbidden: ") and " cannot " in refusal, r
        elif kind == "mutual TLS (etcd CA)":
            assert refusal.endswith("remote error: tls: unknown certificate authority"), r
        elif kind == "serving certificate (caBundle)":
            assert refusal.startswith('500 InternalError: Internal error occurred: failed '
                                      'calling webhook "labels.example.com"'), r
            assert refusal.endswith("tls: failed to verify certificate: x509: certificate "
                                    "signed by unknown authority"), r
        elif kind == "cloud credentials":
            assert r["refusal_code"] == "401" and "AuthFailure" in refusal, r
        elif kind in ("Unix socket (file access)", "executed binary"):
            assert "no such file or directory" in refusal and r["ok"] and r["refused"], r
    rows_of = by_path(rows)
    for path in ("kube-apiserver->kubelet", "metrics-server->kubelet",
                 "konnectivity-agent->kubelet"):
        (r,) = rows_of[path]
        sub = "metrics" if path.startswith("metrics") else "proxy"
        assert r["refusal"] == ("403: Forbidden (user=system:serviceaccount:default:robot, "
                                f"verb=get, resource=nodes, subresource(s)=[{sub}])\n"), r
    (agg,) = rows_of["kube-apiserver->metrics-server"]
    assert agg["refusal"].startswith('403: pods.metrics.k8s.io is forbidden: User '
                                     '"front-proxy-client"')
    assert agg["also"].endswith("tls: failed to verify certificate: x509: certificate signed "
                                "by unknown authority")
    assert "AuthFailure" in rows_of["cloud-controller-manager->cloud-api"][0]["refusal"]
    assert "token audiences" in rows_of["konnectivity-agent->konnectivity-server"][0][
        "refusal"]


def test_paths_that_check_nobody_serve_the_stranger_too(rows: list[dict[str, Any]]) -> None:
    open_rows = [r for r in rows if r["kind"] == "none"]
    assert {r["path"] for r in open_rows} == {
        "kubelet->pod", "pod->pod", "pod->coredns", "ingress-controller->pod",
        "kube-apiserver->pod"}
    for r in open_rows:
        assert r["ok"], r
        if r["path"] == "kube-apiserver->pod":  # the apiserver authorizes the *user*
            assert r["refusal"].startswith("403 Forbidden: ") and "pods/proxy" in r["refusal"]
        else:
            assert not r["refused"], r  # nothing refuses by default
    dns = by_path(rows)["pod->coredns"][0]
    assert dns["success"] == dns["refusal"] and dns["success"].startswith("NOERROR")


def test_the_table_fits_a_phone(rows: list[dict[str, Any]]) -> None:
    # the run's determinism: tests/textbook/test_scenarios_schema.py (a stored digest)
    text = identity.per_path_table(rows)
    assert max(len(line) for line in text.splitlines()) <= 88
    assert text.count("\n  right ") == len(rows)


def test_escalations_and_tunnel() -> None:
    assert scenarios.run("escalations").facts["all_refused"]
    k = scenarios.run("konnectivity").facts
    assert "kube-apiserver->kubelet" not in k["paths"] and k["exec"] == "through the tunnel\n"


def test_pki_table_names_the_three_cas() -> None:
    cas = {ca for _, ca, _, _, _ in identity.pki_table()}
    assert cas == {"kubernetes", "etcd-ca", "front-proxy-ca"}
