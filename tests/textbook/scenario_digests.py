"""Stored digests of every scenario's result at one seed, for the determinism check.

A scenario is deterministic when the same seed gives the same bytes, in any process and in
any order of runs. `tests/textbook/test_scenarios_schema.py` runs each scenario once at
:data:`SEED` and compares the SHA-256 of its result (``ScenarioResult.to_dict()`` as JSON with
sorted keys) with the digest stored in :data:`DIGESTS` (one run against a stored digest instead
of two runs compared with each other: the stored digest was made in another process, with
another hash seed, after other runs). The seed is not the chapters' seed 0: nbval compares the
seed-0 runs with the notebooks' stored outputs.

`bash scripts/refresh-notebooks.sh` rewrites the digests together with the notebooks' outputs
(those of the refreshed chapters' scenarios, or all of them:
``python scripts/refresh_notebooks.py --digests-only``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8sbook.textbook.scenarios import ScenarioResult

#: the seed of the determinism runs (not the chapters' seed 0)
SEED = 3
#: where the digests are stored: {"seed": SEED, "digests": {scenario name: SHA-256}}
DIGESTS = Path(__file__).resolve().parent / "scenario_digests.json"


def digest(result: ScenarioResult) -> str:
    """SHA-256 of a scenario's result as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(result.to_dict(), sort_keys=True).encode()).hexdigest()


def stored() -> dict[str, str]:
    """The stored digests by scenario name (empty if the file is missing)."""
    if not DIGESTS.exists():
        return {}
    data = json.loads(DIGESTS.read_text())
    if data.get("seed") != SEED:
        return {}
    digests: dict[str, str] = data["digests"]
    return digests


def refresh(names: list[str] | None = None) -> list[str]:
    """Run the scenarios ``names`` (default: all) at :data:`SEED` and store their digests;
    digests of scenarios that no longer exist are dropped. Returns the names run."""
    from k8sbook.textbook.scenarios import all_scenarios, run

    known = [s.name for s in all_scenarios()]
    todo = known if names is None else [n for n in names if n in known]
    digests = {k: v for k, v in stored().items() if k in known}
    for name in todo:
        digests[name] = digest(run(name, seed=SEED))
    DIGESTS.write_text(json.dumps({"seed": SEED, "digests": dict(sorted(digests.items()))},
                                  indent=1) + "\n")
    return todo


def stale_message(name: str, got: str, want: str | None) -> str:
    where = DIGESTS.relative_to(DIGESTS.parents[2]).as_posix()
    if want is None:
        head = f"scenario {name!r} has no stored digest in {where}"
    else:
        head = (f"scenario {name!r} at seed {SEED} gave a result whose digest {got[:12]} is "
                f"not the one stored in {where} ({want[:12]})")
    return (f"{head}. If the model's behaviour changed on purpose, refresh the stored "
            f"outputs and digests (`bash scripts/refresh-notebooks.sh`, or the digests alone: "
            f"`python scripts/refresh_notebooks.py --digests-only`) and review the diffs; "
            f"otherwise the run is not deterministic: compare "
            f"`run({name!r}, seed={SEED}).to_dict()` from two processes.")
