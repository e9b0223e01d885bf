"""Run the envelope at one size and store its result with the machine's facts.

    PYTHONPATH=src .venv/bin/python scripts/bench_record.py 500 15000 \\
        benchmarks/envelope-500x15000.json

The run is ``k8sbook.textbook.bench.envelope(nodes, pods)`` (the same as ``k8sbook bench``'s
envelope); the address space is capped at 8 GiB (``RLIMIT_AS``), the issue's memory target,
so a run that would need more fails instead of crowding the machine. CPU seconds are
``time.process_time``: on a machine shared with other work they still grow with the
contention, so the load averages before and after are stored beside them.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

LIMIT = 8 * 1024**3


def main(argv: list[str]) -> int:
    nodes, pods, out = int(argv[0]), int(argv[1]), Path(argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    from k8sbook.textbook import bench

    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                            check=False, capture_output=True, text=True).stdout.strip()
    before = os.getloadavg()
    result = bench.envelope(nodes, pods)
    record = {
        "command": f"PYTHONPATH=src python scripts/bench_record.py {nodes} {pods} {out}",
        "commit": commit,
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "address_space_limit_bytes": LIMIT},
        "envelope": result,
    }
    out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result["against_targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
