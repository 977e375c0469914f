"""Reference results of the shipped instances: `python instances/make_reference.py`.

For every instance file of this folder and each objective (the file's own, then latency, energy
and throughput with the file's constraints), the proven optimum (HiGHS), the assignment and
encodings reaching it, and the LP relaxation of our formulation. `tests/test_reference.py` checks
that the planner still reaches each optimum and that no change to the formulation weakens an LP
relaxation (it guards the README's "LP gap 0" claims); rerun this script when a change is meant
to move them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "src"))

import splitplan  # noqa: E402
from splitplan.instance import Instance, Objective  # noqa: E402
from splitplan.milp import build_milp  # noqa: E402
from splitplan.solvers import solve_standard_form  # noqa: E402

KINDS = ("file", "latency", "energy", "throughput")


def variant(inst: Instance, kind: str) -> Instance:
    """The instance with objective `kind` ("file": as shipped)."""
    return inst if kind == "file" else inst.with_objective(Objective(kind))


def lp_relaxation(inst: Instance) -> float:
    return float(solve_standard_form(build_milp(inst).matrix, "highs", relax=True).objective)


def reference(path: Path) -> dict:
    inst = splitplan.load_instance(path)
    rows = {}
    for kind in KINDS:
        case = variant(inst, kind)
        plan = splitplan.solve(case, time_limit_s=120)
        if plan.status != "optimal":
            raise SystemExit(f"{path.name} ({kind}): {plan.status}, not proven optimal")
        rows[kind] = {
            "objective_kind": case.objective.kind,
            "optimum": plan.objective,
            "lp_relaxation": lp_relaxation(case),
            "assignment": plan.assignment,
            "encodings": plan.encodings,
        }
    return rows


def main() -> None:
    files = sorted(p for p in HERE.glob("*.json") if p.name != "reference.json")
    out = {"format": "splitplan-reference/1", "solver": "highs", "instances": {}}
    for path in files:
        out["instances"][path.name] = reference(path)
        print(f"{path.name}: done", file=sys.stderr)
    (HERE / "reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
