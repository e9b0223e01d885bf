"""The ``k8sbook`` command: the catalog and the model's scenarios from a shell.

``k8sbook claims``, ``k8sbook paths``, ``k8sbook scenarios``, ``k8sbook trace NAME``; each
prints JSON with ``--json`` (sorted keys, the same bytes on every run). ``k8sbook serve`` runs
a model cluster and serves its kube-apiserver over HTTP for kubectl.
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
