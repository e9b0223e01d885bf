"""Chapter 13's scenarios: every row has a real success and a real refusal."""

from k8sbook.textbook import scenarios
from k8sbook.textbook.scenarios import identity


def test_every_path_row_succeeds_and_refuses():
    rows = scenarios.run("identity-per-path").facts["rows"]
    assert len(rows) == 7
    for row in rows:
        assert row["ok"] and row["refused"], row
        assert row["refusal"].split()[0] in ("401", "403", "403:", "refused:"), row


def test_escalations_and_tunnel():
    assert scenarios.run("escalations").facts["all_refused"]
    k = scenarios.run("konnectivity").facts
    assert "kube-apiserver->kubelet" not in k["paths"] and k["exec"] == "through the tunnel\n"


def test_pki_table_names_the_three_cas():
    cas = {ca for _, ca, _, _, _ in identity.pki_table()}
    assert cas == {"kubernetes", "etcd-ca", "front-proxy-ca"}
