"""Every scenario is deterministic, and every object it writes validates against the official
Kubernetes OpenAPI schema.

Determinism: one run per scenario at seed 3, compared with the digest stored for it in
``scenario_digests.json`` (made by ``bash scripts/refresh-notebooks.sh`` in another process;
see ``tests/textbook/scenario_digests.py``)."""

import pytest

pytest.importorskip("kubernetes_validate")

from k8sbook.storage.etcd3 import decode
from k8sbook.textbook.scenarios import all_scenarios, run
from tests.k8s_schema import validate
from tests.textbook import scenario_digests

STORED = scenario_digests.stored()
NAMES = [s.name for s in all_scenarios()]


def stored_objects(cluster):
    """Every object in the model's etcd, as a client would read it."""
    resp = cluster.etcd.range("/registry/", "/registry0")
    return [decode(kv) for kv in resp.kvs]


@pytest.mark.parametrize("name", NAMES)
def test_scenario_is_deterministic_and_schema_valid(name):
    # seed 3, not the chapters' seed 0: nbval already compares seed-0 runs with stored outputs
    result = run(name, seed=scenario_digests.SEED)
    got = scenario_digests.digest(result)
    assert got == STORED.get(name), scenario_digests.stale_message(name, got, STORED.get(name))
    objs = stored_objects(result.cluster)
    assert objs
    for obj in objs:
        validate(obj)


def test_every_scenario_has_a_stored_digest_and_no_other():
    assert sorted(STORED) == sorted(NAMES), (
        f"{scenario_digests.DIGESTS.name} is stale: missing {sorted(set(NAMES) - set(STORED))}, "
        f"extra {sorted(set(STORED) - set(NAMES))}; refresh it with "
        "`python scripts/refresh_notebooks.py --digests-only`")


def test_a_changed_result_fails_with_a_message_naming_the_scenario():
    message = scenario_digests.stale_message("csr-cleaner", "0" * 64, "f" * 64)
    assert "'csr-cleaner'" in message and "scripts/refresh-notebooks.sh" in message
    assert "tests/textbook/scenario_digests.json" in message


def test_the_refresh_stores_what_the_check_compares_and_drops_unknown_names(tmp_path,
                                                                             monkeypatch):
    import json

    monkeypatch.setattr(scenario_digests, "DIGESTS", tmp_path / "digests.json")
    scenario_digests.DIGESTS.write_text(json.dumps({"seed": 3, "digests": {"gone": "0"}}))
    assert scenario_digests.refresh(["hub-write-and-watch"]) == ["hub-write-and-watch"]
    assert scenario_digests.stored() == {"hub-write-and-watch": STORED["hub-write-and-watch"]}


def test_the_helper_agrees_with_kubernetes_validate():
    import kubernetes_validate

    from k8sbook.api import objects
    from tests.k8s_schema import K8S_VERSION
    good = objects.pod("p")
    validate(good)
    kubernetes_validate.validate(good, K8S_VERSION, strict=True)
    bad = objects.pod("p")
    bad["spec"]["containers"][0]["ports"] = [{"containerPort": "eighty"}]
    with pytest.raises(Exception):  # noqa: B017 - the two libraries raise their own types
        validate(bad)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
