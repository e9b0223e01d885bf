"""Controller history (``pkg/controller/history``): hashes, names, equality, order."""

from __future__ import annotations

from k8sbook.controlplane.controllers import history


def test_fnv1_and_fnv1a_known_answers():
    from k8sbook.controlplane.controllers.deployment_util import compute_hash
    assert history.fnv1_32(b"") == 0x811C9DC5
    assert history.fnv1_32(b"a") == 0x050C5D7E  # FNV-1, what fnv.New32 computes
    assert history.go_json({"b": "<&>", "a": [1, "é"]}) == \
        '{"a":[1,"é"],"b":"\\u003c\\u0026\\u003e"}'.encode()
    assert compute_hash({}, None) != compute_hash({}, 0)  # a collision count is hashed


def test_revisions_sort_by_number_then_time_then_name_and_compare_by_data():
    def rev(name: str, number: int, stamp: str, data: dict) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": stamp,
                             "labels": {history.HASH_LABEL: name}},
                "revision": number, "data": data}
    a = rev("a", 2, "2026-01-01T00:00:01Z", {"x": 1})
    b = rev("b", 1, "2026-01-01T00:00:02Z", {"x": 1})
    c = rev("c", 2, "2026-01-01T00:00:00Z", {"x": 1})
    assert [r["metadata"]["name"] for r in history.sort_revisions([a, b, c])] == ["b", "c", "a"]
    assert not history.equal_revision(a, b)  # the hash labels differ
    b["metadata"]["labels"][history.HASH_LABEL] = "a"
    assert history.equal_revision(a, b)
    assert history.next_revision(history.sort_revisions([a, b, c])) == 3
    assert history.revision_name("x" * 300, "h") == "x" * 223 + "-h"
