"""The ``k8sbook`` command: the catalog and the model's scenarios from a shell.

``k8sbook claims``, ``k8sbook paths``, ``k8sbook scenarios``, ``k8sbook trace NAME``; each
prints JSON with ``--json`` (sorted keys, the same bytes on every run). ``k8sbook serve`` runs
a model cluster and serves its kube-apiserver over HTTP for kubectl. ``k8sbook bench`` runs the
scale benchmark (:mod:`k8sbook.textbook.bench`; its times depend on the machine);
``k8sbook scale-results`` reruns chapter 15's stored full-size results
(:mod:`k8sbook.textbook.scale_results`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from k8sbook.textbook import catalog, scenarios


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def _claims(args: argparse.Namespace) -> str:
    rows = catalog.claims()
    if args.json:
        return _dump([asdict(c) for c in rows])
    lines = [f"{'id':<4} {'verdict':<30} claim"]
    lines += [f"{c.id:<4} {c.verdict:<30} {c.claim}" for c in rows]
    return "\n".join(lines)


def _paths(args: argparse.Namespace) -> str:
    rows = catalog.paths()
    if args.json:
        return _dump([asdict(p) for p in rows])
    lines = [f"{'path':<48} {'plane':<8} {'port':<6} protocol"]
    for p in rows:
        port = str(p.port) if p.port is not None else "-"
        lines.append(f"{p.id:<48} {p.plane:<8} {port:<6} {p.protocol}")
    return "\n".join(lines)


def _scenarios(args: argparse.Namespace) -> str:
    rows = scenarios.all_scenarios()
    if args.json:
        return _dump([{"name": s.name, "title": s.title, "chapter": s.chapter} for s in rows])
    return "\n".join(f"{s.name:<32} {s.chapter:<28} {s.title}" for s in rows)


def _trace(args: argparse.Namespace) -> str:
    result = scenarios.run(args.name, seed=args.seed)
    if args.json:
        return _dump(result.to_dict())
    facts = "\n".join(f"  {k}: {json.dumps(v, sort_keys=True)}"
                      for k, v in sorted(result.facts.items()))
    return (result.cluster.trace.table(result.messages)
            + f"\n\npaths used: {', '.join(result.paths())}\nfacts:\n{facts}")


def _serve(args: argparse.Namespace) -> str:
    try:  # imported here: the other verbs need no HTTP server and no TLS
        from k8sbook.serve.server import serve_forever
    except ModuleNotFoundError as err:
        raise KeyError(f"serve needs {err.name}: pip install 'k8sbook[serve]'") from err
    serve_forever(args.port, args.kubeconfig, args.seed)
    return ""


def _bench(args: argparse.Namespace) -> str:
    from k8sbook.textbook import bench  # imported here: it is only needed by this verb
    result = bench.run(nodes=args.nodes, pods=args.pods, sched_nodes=args.sched_nodes,
                       init_pods=args.init_pods, measure_pods=args.measure_pods,
                       growth_nodes=args.growth_nodes, growth_pods=args.growth_pods,
                       seed=args.seed)
    if args.json:
        return _dump(result)
    g, e, s = result["growth"], result["envelope"], result["scheduling_basic"]
    t = e["against_targets"]
    return "\n".join([
        (f"growth: {g['small']['nodes']}/{g['small']['pods']} -> "
        f"{g['large']['nodes']}/{g['large']['pods']} nodes/pods: "
        f"{g['cpu_ratio']:.2f}x CPU time (linear: 2)"),
        (f"envelope: {e['nodes']} nodes, {e['running']}/{e['pods']} pods Running in "
        f"{e['wall_seconds']:.1f} s wall ({e['cpu_seconds']:.1f} s CPU, "
        f"{e['virtual_seconds']:g} s virtual), {e['pods_per_second']:.1f} pods/s, "
        f"{e['messages']} messages, {e['watch_events']} watch events, "
        f"peak RSS {e['peak_rss_mb']:.0f} MB"),
        (f"envelope against the targets ({t['basis']}): {t['cpu_seconds']:.0f} s CPU "
         f"(target {t['target_cpu_seconds']:.0f} s: {'met' if t['cpu_within'] else 'not met'}),"
         f" {t['rss_mb']:.0f} MB (target {t['target_rss_mb']:.0f} MB: "
         f"{'met' if t['rss_within'] else 'not met'})"),
        (f"SchedulingBasic: {s['nodes']} nodes, {s['init_pods']} initial + "
        f"{s['scheduled']}/{s['measure_pods']} measured pods: {s['pods_per_second']:.1f} "
        f"pods/s = {s['ratio_to_go_threshold']:.3f} x the Go scheduler's CI gate "
        f"({s['go_threshold_pods_per_second']} pods/s); per CPU second "
        f"{s['pods_per_cpu_second']:.1f} pods/s = {s['cpu_ratio_to_go_threshold']:.3f} x")])


def _scale_results(args: argparse.Namespace) -> str:
    from k8sbook.textbook import scale_results  # imported here: only this verb needs it
    results, seconds = scale_results.timed()
    if args.write:
        where = scale_results.write(results)
        return f"wrote {where} ({', '.join(f'{k}: {v:g} s CPU' for k, v in seconds.items())})"
    same = results == scale_results.stored()
    return _dump(results) + "\n" + ("same as the stored results" if same else
                                    "DIFFERENT from the stored results")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8sbook", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, fn, text in (("claims", _claims, "the seed's 29 claims with verdicts"),
                           ("paths", _paths, "every communication path"),
                           ("scenarios", _scenarios, "the model's named scenarios")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(fn=fn)
    p = sub.add_parser("trace", help="run a scenario and print its messages")
    p.add_argument("name")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(fn=_trace)
    p = sub.add_parser("serve", help="serve a model cluster over HTTP for kubectl")
    p.add_argument("--port", type=int, default=0, help="loopback port (0: any free port)")
    p.add_argument("--kubeconfig", default="k8sbook.kubeconfig", help="kubeconfig to write")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_serve)
    p = sub.add_parser("bench", help="run the scale benchmark (the envelope, SchedulingBasic)")
    for flag, default, text in (
            ("--nodes", 5000, "envelope: nodes with kubelets"),
            ("--pods", 150000, "envelope: pods, through ReplicaSets of 100"),
            ("--sched-nodes", 5000, "SchedulingBasic: nodes"),
            ("--init-pods", 1000, "SchedulingBasic: initial pods"),
            ("--measure-pods", 10000, "SchedulingBasic: measured pods"),
            ("--growth-nodes", 250, "growth ratio: nodes of the smaller run"),
            ("--growth-pods", 7500, "growth ratio: pods of the smaller run"),
            ("--seed", 0, "seed")):
        p.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(fn=_bench)
    p = sub.add_parser("scale-results", help="rerun chapter 15's full-size benchmarks and "
                       "compare them with the stored results (--write: store them)")
    p.add_argument("--write", action="store_true",
                   help="store the results in the package data (textbook/data)")
    p.set_defaults(fn=_scale_results)
    args = parser.parse_args(argv)
    try:
        out = args.fn(args)
    except KeyError as err:
        print(f"k8sbook: {err.args[0]}", file=sys.stderr)
        return 2
    try:
        print(out)
        sys.stdout.flush()
    except BrokenPipeError:  # `k8sbook claims --json | head`: the reader left, not an error
        sys.stdout = None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
