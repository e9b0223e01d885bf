"""The scale benchmark at tiny sizes: it measures what it says (the timings themselves are
the machine's, so only their presence and the counts are checked)."""

from __future__ import annotations

import json

from k8sbook import cli
from k8sbook.textbook import bench


def test_envelope_runs_every_pod_through_replicasets_and_kubelets() -> None:
    out = bench.envelope(2, 40)
    assert (out["running"], out["replicasets"]) == (40, 1)
    assert out["virtual_seconds"] > 0 and out["cpu_seconds"] > 0 and out["peak_rss_mb"] > 0
    # counted, not recorded: messages and watch events with their bytes
    assert out["messages"] > out["watch_events"] > 40 and out["bytes"] > 0


def test_scheduling_basic_uses_scheduler_perf_shapes_and_the_680_gate() -> None:
    pod, node = bench.perf_pod("p"), bench.perf_node("n")
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m",
                                                                     "memory": "500Mi"}
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "32Gi", "pods": "110"}
    out = bench.scheduling_basic(5, 5, 10)
    assert out["scheduled"] == 10 and out["go_threshold_pods_per_second"] == 680
    assert abs(out["ratio_to_go_threshold"] - out["pods_per_second"] / 680) < 0.001


def test_k8sbook_bench_prints_json(capsys) -> None:
    assert cli.main(["bench", "--nodes", "2", "--pods", "20", "--sched-nodes", "3",
                     "--init-pods", "2", "--measure-pods", "4", "--growth-nodes", "1",
                     "--growth-pods", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(result) == ["envelope", "growth", "scheduling_basic"]
    assert result["growth"]["large"]["pods"] == 20 and result["growth"]["cpu_ratio"] > 0
    assert result["envelope"]["running"] == 20
