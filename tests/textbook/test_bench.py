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


def test_against_targets_projects_a_smaller_run_and_judges_a_full_one() -> None:
    small = {"nodes": 500, "pods": 15000, "cpu_seconds": 100.0, "peak_rss_mb": 1000.0}
    linear = bench.against_targets(small)
    assert linear["basis"] == "projected from 500/15000"
    assert (linear["cpu_seconds"], linear["rss_mb"]) == (1000.0, 10000)  # 10x the pods
    assert not linear["cpu_within"] and not linear["rss_within"]
    steeper = bench.against_targets(small, growth_ratio=2.2)  # 2.2x per doubling
    assert steeper["cpu_seconds"] == round(100.0 * 2.2 ** __import__("math").log2(10), 1)
    based = bench.against_targets({**small, "base_rss_mb": 60.0})  # the interpreter's own
    assert based["rss_mb"] == round(60.0 + 940.0 * 10)                # is not multiplied
    full = {"nodes": 5000, "pods": 150000, "cpu_seconds": 590.0, "peak_rss_mb": 8000.0}
    judged = bench.against_targets(full)
    assert judged["basis"] == "measured" and judged["cpu_within"] and judged["rss_within"]
    assert (judged["target_cpu_seconds"], judged["target_rss_mb"]) == (600.0, 8192.0)


def test_the_envelope_gives_kubelets_past_the_256th_node_their_own_ip_and_cidr() -> None:
    from k8sbook.cluster import NodeIPAM
    ipam = NodeIPAM(bench.ENVELOPE_POD_CIDR)
    ips = [ipam.node_ip(bench.node_name(i)) for i in range(5000)]
    cidrs = {ipam.pod_cidr(bench.node_name(i)) for i in range(5000)}
    assert ips[0] == "192.168.0.10" and ips[245] == "192.168.0.255" and ips[246] == "192.168.1.0"
    assert len(set(ips)) == 5000 and len(cidrs) == 5000
    assert ipam.pod_cidr(bench.node_name(4999)) == "10.19.135.0/24"
