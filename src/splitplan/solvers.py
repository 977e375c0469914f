"""HiGHS and OR-Tools behind one call: `solve_milp(milp, solver=...)`.

The matrix of the Pyomo model (`Milp.matrix`, recorded row by row while the model is built) is
handed to the solver's own API; `standard_form(model)` reads the same matrix from any linear Pyomo
model by walking its expressions (slower; the tests check the two agree). Pyomo's generic writers
are an order of magnitude slower still at the sizes of the benchmark. Every backend gets the
same model rescaled by `scale`; what comes back is normalised to a `SolverResult` that keeps the
solver's termination, its point, that point's objective and the bound it proved apart
(models/formulation.md §9 "Solvers"). `plan.solve` turns it into a verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.repn import generate_standard_repn

from .milp import INF, Milp, StandardForm, merge_duplicates

SOLVERS = ("highs", "ortools", "ortools-cpsat")
PYOMO_PREFIX = "pyomo:"  # `pyomo:NAME`: the Pyomo model, solved by Pyomo's solver NAME


class SolverUnavailable(ValueError):
    """A solver that is not installed or not known."""


def check_solver(solver: str) -> None:
    """Raise `SolverUnavailable` unless `solver` is one of SOLVERS or `pyomo:NAME` with NAME a
    solver that Pyomo finds on this machine."""
    if solver in SOLVERS:
        return
    if solver.startswith(PYOMO_PREFIX) and solver != PYOMO_PREFIX:
        import pyomo.environ as pyo

        name = solver.removeprefix(PYOMO_PREFIX)
        try:
            available = bool(pyo.SolverFactory(name).available(exception_flag=False))
        except Exception:  # Pyomo raises various errors for unknown or broken solvers
            available = False
        if not available:
            raise SolverUnavailable(
                f"Pyomo cannot find the solver {name!r} on this machine (try pyomo:appsi_highs, "
                "or install the solver's executable, e.g. cbc or glpsol)"
            )
        return
    raise SolverUnavailable(
        f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)} or pyomo:NAME"
    )


def _terms(expr) -> tuple[list[tuple[float, object]], float]:
    """(coefficient, var) terms and constant of a linear Pyomo expression."""
    if type(expr) is LinearExpression:
        terms, const = [], 0.0
        for arg in expr.args:
            if type(arg) is MonomialTermExpression:
                coef, var = arg.args
                terms.append((float(coef), var))
            elif arg.__class__ in (int, float):
                const += arg
            else:  # pragma: no cover - only for hand-edited models
                return _generic_terms(expr)
        return terms, const
    return _generic_terms(expr)


def _generic_terms(expr) -> tuple[list[tuple[float, object]], float]:
    repn = generate_standard_repn(expr, compute_values=True, quadratic=False)
    if not repn.is_linear():
        raise ValueError(f"non-linear expression in the model: {expr}")
    return list(zip(map(float, repn.linear_coefs), repn.linear_vars, strict=True)), float(
        repn.constant
    )


def standard_form(model: pyo.ConcreteModel) -> StandardForm:
    """Read a linear Pyomo model into CSR arrays."""
    columns = list(model.component_data_objects(pyo.Var, active=True, descend_into=True))
    col_of = {id(v): j for j, v in enumerate(columns)}
    n = len(columns)
    col_lb = np.array([-INF if v.lb is None else v.lb for v in columns], dtype=float)
    col_ub = np.array([INF if v.ub is None else v.ub for v in columns], dtype=float)
    integer = np.array([v.is_integer() or v.is_binary() for v in columns], dtype=bool)
    starts, index, value, lbs, ubs = [0], [], [], [], []
    for con in model.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        terms, const = _terms(con.body)
        for coef, var in terms:
            index.append(col_of[id(var)])
            value.append(coef)
        starts.append(len(index))
        lb, ub = con.lb, con.ub
        lbs.append(-INF if lb is None else lb - const)
        ubs.append(INF if ub is None else ub - const)
    (obj,) = model.component_data_objects(pyo.Objective, active=True, descend_into=True)
    terms, offset = _terms(obj.expr)
    c = np.zeros(n)
    for coef, var in terms:
        c[col_of[id(var)]] += coef
    A_start, A_index, A_value = merge_duplicates(
        np.array(starts, dtype=np.int64), np.array(index, dtype=np.int64), np.array(value)
    )
    return StandardForm(
        c=c,
        offset=offset,
        A_start=A_start,
        A_index=A_index,
        A_value=A_value,
        row_lb=np.array(lbs, dtype=float),
        row_ub=np.array(ubs, dtype=float),
        col_lb=col_lb,
        col_ub=col_ub,
        integer=integer,
        columns=[v.name for v in columns],
    )


# --------------------------------------------------------------------------- scaling

# Scale factors are powers of two, so scaling and unscaling are exact in floating point.
ABS_GAP = 1e-9  # default absolute gap, in units of the objective's largest coefficient
# SCIP's feasibility tolerance, on rows whose largest coefficient is ~1 after `scale`
FEASIBILITY_TOL = 1e-9


def _pow2(x: np.ndarray | float) -> np.ndarray:
    return np.exp2(np.round(np.log2(x)))


@dataclass(frozen=True)
class Scaling:
    """How `scale` changed units: column j of the original model is `col_unit[j]` times column j
    of the scaled one, row i of the scaled model is row i times `row_scale[i]`, and the original
    objective is `objective_unit` times the scaled one (offset included)."""

    objective_unit: float
    row_scale: np.ndarray
    col_unit: np.ndarray


def scale(sf: StandardForm, floor: bool = True) -> tuple[StandardForm, Scaling]:
    """Rescale a model so that its objective and row coefficients are near 1.

    Objectives in seconds or joules put 1e-9 s transfers beside 1 s layers and 1e-3 s objectives
    beside the solvers' 1e-6 absolute tolerances. Three steps, all by powers of two:
    1. a continuous column without an upper bound (the period P, the working
       sets M) gets as unit the geometric mean, over its rows, of the largest other coefficient
       of the row divided by its own (P is then counted in units of a typical load). In seconds,
       P's coefficient 1 dwarfs loads of microseconds in the rows P >= load, whose violation by
       a feasibility tolerance (1e-7) is then 10 % of a period of 1e-6 s: HiGHS returned such
       points as optimal (tests/test_solver_honesty.py, fast clusters);
    2. each row is divided by its largest coefficient;
    3. the objective is divided by its largest coefficient, or, with `floor` (every backend but
       CP-SAT, whose grid keeps the largest coefficient), by `sf.objective_floor` (a lower
       bound on the optimum) where that is smaller, which becomes its unit: an absolute gap or
       tolerance of 1e-9 means 1e-9 of that. Solvers prune a node whose bound is within an
       absolute tolerance of the incumbent (HiGHS 1.12: its feasibility tolerance, 1e-6), so an
       optimum below ~1 in the solver's units is not proven to 1e-6: HiGHS called a 1.2e-4 s
       period "optimal" 0.5 % above its own bound. With the floor as the unit the optimum is at
       least ~1.
    Integer columns keep their unit (x stays 0/1).
    """
    n, m = len(sf.c), len(sf.row_lb)
    rows = np.repeat(np.arange(m), np.diff(sf.A_start))
    cols = sf.A_index
    mag = np.abs(sf.A_value)
    col_unit = np.ones(n)
    free = ~sf.integer & ~np.isfinite(sf.col_ub)
    if free.any():
        other = np.where(free[cols], 0.0, mag)
        row_max_other = np.zeros(m)
        np.maximum.at(row_max_other, rows, other)
        for j in np.flatnonzero(free):
            at = np.flatnonzero(cols == j)
            ratio = row_max_other[rows[at]] / mag[at]
            ratio = ratio[ratio > 0]
            if len(ratio):
                col_unit[j] = float(_pow2(np.exp(np.mean(np.log(ratio)))))
    value = sf.A_value * col_unit[cols]
    row_max = np.zeros(m)
    np.maximum.at(row_max, rows, np.abs(value))
    row_scale = np.ones(m)
    row_scale[row_max > 0] = 1.0 / _pow2(row_max[row_max > 0])
    c = sf.c * col_unit
    c_max = float(np.abs(c).max()) if len(c) else 0.0
    unit = float(_pow2(c_max)) if c_max > 0 else 1.0
    if floor and sf.objective_floor > 0:
        unit = min(unit, float(_pow2(sf.objective_floor)))
    scaled = replace(
        sf,
        c=c / unit,
        offset=sf.offset / unit,
        objective_floor=sf.objective_floor / unit,
        A_value=value * row_scale[rows],
        row_lb=sf.row_lb * row_scale,
        row_ub=sf.row_ub * row_scale,
        col_lb=sf.col_lb / col_unit,
        col_ub=sf.col_ub / col_unit,
    )
    return scaled, Scaling(unit, row_scale, col_unit)


# --------------------------------------------------------------------------- results

TERMINATIONS = ("optimal", "infeasible", "time_limit", "other")


@dataclass
class SolverResult:
    """What a solver said, each part apart (after linopy's `Result`).

    `termination`: why it stopped, in its own words mapped to optimal | infeasible | time_limit |
    other; `values`: the point it returned (original units; None when it has none);
    `objective`: that point's objective in the model, c.x + offset, recomputed here; `bound`: the
    lower bound it proved, valid for the original (float) model, or None; `abs_gap`, `rel_gap`:
    the gap it was asked to close (the solver is asked for half of each, which leaves room for
    rounding between its arithmetic and ours).
    """

    termination: str
    values: np.ndarray | None
    objective: float | None
    bound: float | None
    abs_gap: float
    rel_gap: float
    solve_time_s: float
    solver: str
    nodes: int | None = None
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.values is not None

    @property
    def status(self) -> str:
        """One word: optimal (the gap is closed within the stated tolerance), feasible,
        infeasible, time_limit (no point) or error."""
        if self.termination == "infeasible":
            return "infeasible"
        if self.values is None:
            return "time_limit" if self.termination == "time_limit" else "error"
        if gap_closed(self.objective, self.bound, self.abs_gap, self.rel_gap):
            return "optimal"
        return "time_limit" if self.termination == "time_limit" else "feasible"


def gap_closed(
    objective: float | None, bound: float | None, abs_gap: float, rel_gap: float
) -> bool:
    """objective - bound <= max(abs_gap, rel_gap * |objective|), with a bound."""
    if objective is None or bound is None:
        return False
    return objective - bound <= max(abs_gap, rel_gap * abs(objective))


def solve_standard_form(
    sf: StandardForm,
    solver: str = "highs",
    time_limit_s: float | None = None,
    relax: bool = False,
    mip_rel_gap: float = 1e-6,
    threads: int | None = None,
    verbose: bool = False,
    start: dict[int, float] | None = None,
    mip_abs_gap: float | None = None,
    binary_at_optimum: np.ndarray | None = None,
    presolve: bool | None = None,
    on_incumbent: Callable[[np.ndarray], None] | None = None,
) -> SolverResult:
    """Solve a `StandardForm` with HiGHS, OR-Tools SCIP or OR-Tools CP-SAT.

    The model is scaled first (`scale`) and everything is mapped back. `relax=True` drops
    integrality (the LP relaxation; HiGHS and SCIP only). `start` maps column indices to the
    values of a known solution (a MIP start; the solver completes the other columns).
    `mip_rel_gap` and `mip_abs_gap` (the objective's unit; default 1e-9 of its largest
    coefficient) are the gap a result must close to be called optimal. `binary_at_optimum` marks
    continuous columns that some optimal solution has at 0 or 1 (CP-SAT makes them Booleans;
    the others get a fine integer grid); None: none are. `presolve` is HiGHS' on a MIP: None
    leaves it off (`_highs` says why); True turns it on, for runs whose bound and status nobody
    relies on (`polish` keeps a plan only after the evaluator has costed it). `on_incumbent`
    (HiGHS on a MIP only; the other backends ignore it) is called with each better point the
    solver finds, in the model's units, while it runs (`polish.PolishProcess.offer`).
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}")
    began = time.perf_counter()
    # CP-SAT's integer grid keeps the objective's largest coefficient as its unit
    scaled, units = scale(sf, floor=solver != "ortools-cpsat")
    if time_limit_s is not None:  # the limit covers scaling too
        time_limit_s = float(time_limit_s) - (time.perf_counter() - began)
    abs_gap = ABS_GAP * units.objective_unit if mip_abs_gap is None else float(mip_abs_gap)
    gaps = (abs_gap / units.objective_unit, mip_rel_gap)
    start_scaled = {j: v / units.col_unit[j] for j, v in (start or {}).items()}
    if solver == "highs":
        found = None
        if on_incumbent is not None:
            col_unit = units.col_unit

            def found(values: np.ndarray) -> None:
                on_incumbent(values * col_unit)

        raw = _highs(
            scaled, time_limit_s, relax, gaps, threads, verbose, start_scaled, presolve, found
        )
    elif solver == "ortools":
        raw = _scip(scaled, time_limit_s, relax, gaps, threads, verbose, start_scaled)
    else:
        if relax:
            raise ValueError("CP-SAT has no LP relaxation to report; use highs or ortools")
        boolean = (
            np.zeros(len(sf.c), dtype=bool) if binary_at_optimum is None else binary_at_optimum
        )
        raw = _cpsat(scaled, time_limit_s, gaps, threads, verbose, start_scaled, boolean)
    values = None if raw.values is None else raw.values * units.col_unit
    return SolverResult(
        raw.termination,
        values,
        None if values is None else float(sf.c @ values + sf.offset),
        None if raw.bound is None else raw.bound * units.objective_unit,
        abs_gap,
        mip_rel_gap,
        raw.solve_time_s,
        solver,
        raw.nodes,
        raw.message,
    )


def binary_at_optimum(milp: Milp) -> np.ndarray:
    """Continuous columns that some optimal solution has at 0 or 1: the transfer families of §9
    (r, y, z, f, g, u, s stand for products of 0/1 assignments; "Why it is exact"), not the
    working set M nor the period P. Columns not recognised are left out (the safe side: they get
    CP-SAT's grid). A model may state it itself as `StandardForm.binary_at_optimum`."""
    sf = milp.matrix
    stated = getattr(sf, "binary_at_optimum", None)
    if stated is not None:
        return np.asarray(stated, dtype=bool)
    out = np.zeros(len(sf.c), dtype=bool)
    for fam in milp.families:
        if fam.kind == "var" and fam.name in _PRODUCT_FAMILIES and not fam.binary:
            if tuple(fam.bounds) == (0, 1):
                out[fam.start : fam.stop] = True
    return out


_PRODUCT_FAMILIES = frozenset({"z", "f", "r", "y", "g", "u", "s"})


def solve_milp(milp: Milp, solver: str = "highs", **kw) -> tuple[SolverResult, StandardForm]:
    """Solve a built MILP: its matrix goes to HiGHS or OR-Tools directly; `pyomo:NAME` solves
    `milp.to_pyomo()` with Pyomo's solver NAME instead (e.g. `pyomo:appsi_highs`, `pyomo:cbc`)."""
    if solver.startswith(PYOMO_PREFIX):
        return solve_pyomo(milp, solver.removeprefix(PYOMO_PREFIX), **kw), milp.matrix
    if solver == "ortools-cpsat":
        kw.setdefault("binary_at_optimum", binary_at_optimum(milp))
    return solve_standard_form(milp.matrix, solver, **kw), milp.matrix


@dataclass
class _Raw:
    """A backend's answer on the scaled model."""

    termination: str
    values: np.ndarray | None
    bound: float | None
    solve_time_s: float
    nodes: int | None = None
    message: str = ""


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


# --------------------------------------------------------------------------- HiGHS


def _highs(
    sf, time_limit_s, relax, gaps, threads, verbose, start, presolve=None, on_incumbent=None
) -> _Raw:
    """HiGHS on a MIP runs once, with presolve off.

    HiGHS 1.12's presolve proved a wrong optimum (5.72 J against 3.34 J, its bound cut off the
    optimum) on tests/data/highs-energy-chain-6x3.json; without presolve it is right, and
    switching only the faulty rule off (dominated columns, presolve_rule_off = 64) crashed HiGHS
    1.12. Earlier versions ran presolve first and checked every answer by a second run without
    it; on our models presolve removes almost nothing (61 of 10,125 rows of a 300 x 16
    throughput chain) and the run without it was the faster one on every benchmark family
    (models/formulation.md §9 "Solvers"), so the check became the only run: the whole time
    limit goes to one run whose bound is reported. LPs (`relax`) keep presolve, and so does a
    MIP when asked (`presolve=True`): on the neighbourhoods of `polish`, where most columns are
    fixed, it is many times faster (`python benchmarks/polish.py --presolve`).
    """
    mip = not relax and bool(sf.integer.any())
    on = not mip if presolve is None else presolve
    return _highs_run(sf, time_limit_s, relax, gaps, threads, verbose, start, on, on_incumbent)


# HiGHS 1.12 on a MIP, between the first checks of its clock: building its MIP data, symmetry
# detection and the presolve of the root LP, none of which looks at the time limit or calls the
# interrupt callbacks (benchmarks/deadline.py --callbacks: on the 1000 x 16 throughput model,
# 853,053 nonzeros, with its MIP start and a 3 s limit, HiGHS stopped after 4.8-5.7 s, with or
# without callbacks, on 2 shared cores). With less time left than this estimate HiGHS is not
# started (`time_limit`, no point, no bound): before its root LP it has no plan but the MIP
# start, which `plan.solve` holds anyway, and only the bound of its domain propagation.
HIGHS_ROOT_S_PER_NZ = 7e-6


def _highs_run(
    sf, time_limit_s, relax, gaps, threads, verbose, start, presolve: bool, on_incumbent=None
) -> _Raw:
    """One HiGHS run on the scaled `sf`, stopped at `time_limit_s` seconds after the call.

    HiGHS checks its `time_limit` (and calls its interrupt callbacks, at the same places) only
    between phases; on a 1000 x 16 throughput model phases that check neither took seconds
    (benchmarks/deadline.py). Three of them are ours to avoid: loading the model (numpy arrays
    handed over as pointers, not converted element by element), feasibility jump (below), and
    a run started when the limit has already passed (no run: `time_limit` without a point).
    """
    import highspy

    began = time.perf_counter()
    h = highspy.Highs()
    if not presolve:
        h.setOptionValue("presolve", "off")
    h.setOptionValue("output_flag", bool(verbose))
    h.setOptionValue("log_to_console", bool(verbose))
    # Asked for half the stated gap; HiGHS' default absolute gap (1e-6) would be 0.1 % of a
    # 1 ms objective without scaling.
    h.setOptionValue("mip_rel_gap", gaps[1] / 2)
    h.setOptionValue("mip_abs_gap", gaps[0] / 2)
    # HiGHS keeps its default feasibility tolerances (1e-6 MIP, 1e-7 primal, on rows whose
    # largest coefficient is now ~1); see `_highs` for why presolve is off on MIPs.
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    mip = not relax and bool(sf.integer.any())
    integrality = sf.integer.astype(np.int32) if mip else np.zeros(len(sf.c), dtype=np.int32)
    h.passModel(
        len(sf.c),
        len(sf.row_lb),
        len(sf.A_value),
        int(highspy.MatrixFormat.kRowwise),
        int(highspy.ObjSense.kMinimize),
        float(sf.offset),
        np.ascontiguousarray(sf.c, dtype=float),
        np.ascontiguousarray(sf.col_lb, dtype=float),
        np.ascontiguousarray(sf.col_ub, dtype=float),
        np.ascontiguousarray(sf.row_lb, dtype=float),
        np.ascontiguousarray(sf.row_ub, dtype=float),
        sf.A_start.astype(np.int32),
        sf.A_index.astype(np.int32),
        np.ascontiguousarray(sf.A_value, dtype=float),
        integrality,  # 1 = HighsVarType.kInteger, 0 = kContinuous
    )
    if start and mip:
        cols = np.array(list(start), dtype=np.int32)
        h.setSolution(len(cols), cols, np.array([start[j] for j in cols], dtype=float))
        # Feasibility jump (HiGHS 1.12, before the root LP) looks for a first feasible point
        # from the columns' bounds; it stops on an effort count, never on the clock (on the
        # 1000 x 16 throughput model the longest stretch without a check was 0.4-2.5 s longer
        # with it, benchmarks/deadline.py --callbacks). With a MIP start there is a point.
        h.setOptionValue("mip_heuristic_run_feasibility_jump", False)
    if time_limit_s is not None:
        # HiGHS' clock starts at run(), not when the model is handed over
        left = float(time_limit_s) - (time.perf_counter() - began)
        if left <= (HIGHS_ROOT_S_PER_NZ * len(sf.A_value) if mip else 0.0):
            return _Raw(
                "time_limit",
                None,
                None,
                time.perf_counter() - began,
                0 if mip else None,
                "time limit reached before HiGHS was run",
            )
        h.setOptionValue("time_limit", left)
    if on_incumbent is not None and mip:
        improving = highspy.cb.HighsCallbackType.kCallbackMipImprovingSolution
        h.callbacks[int(improving)].subscribe(
            lambda event: on_incumbent(np.array(event.data_out.mip_solution, dtype=float))
        )
    h.run()
    elapsed = time.perf_counter() - began
    ms = h.getModelStatus()
    info = h.getInfo()
    S = highspy.HighsModelStatus
    # Our models are bounded below (columns >= 0 with finite costs), so "unbounded or
    # infeasible" is infeasible.
    termination = {
        S.kOptimal: "optimal",
        S.kInfeasible: "infeasible",
        S.kUnboundedOrInfeasible: "infeasible",
        S.kTimeLimit: "time_limit",
    }.get(ms, "other")
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    values = np.array(h.getSolution().col_value) if has_solution else None
    if mip:
        bound = _finite(info.mip_dual_bound) if termination != "infeasible" else None
    else:  # an LP's optimum is its own bound; nothing is proven before it is reached
        bound = info.objective_function_value if termination == "optimal" else None
    nodes = int(info.mip_node_count) if mip else None
    return _Raw(termination, values, bound, elapsed, nodes, h.modelStatusToString(ms))


# --------------------------------------------------------------------------- SCIP

# SCIP 10.0 (in OR-Tools 9.15) returns "optimal" plans up to 2.5x the optimum on small
# energy/memory/latency-limit instances (tests/data/scip-*.json): the pseudo-objective propagator
# strengthens its activity bound with implications found by probing (propuseimplics), a
# reduction SCIP only makes when weak dual reductions are allowed, and it cuts off the optimum.
# Turning off weak dual reductions removes it (and, with it, fixings that may drop optimal
# solutions of equal cost, which a MIP start must survive).
SCIP_PARAMS = {"misc/allowweakdualreds": False}


def _scip(sf, time_limit_s, relax, gaps, threads, verbose, start) -> _Raw:
    """SCIP through OR-Tools' MathOpt, which says why SCIP stopped (pywraplp does not)."""
    from datetime import timedelta

    from ortools.math_opt import model_pb2
    from ortools.math_opt.python import mathopt

    began = time.perf_counter()  # the limit covers handing the model over
    n, m = len(sf.c), len(sf.row_lb)
    proto = model_pb2.ModelProto()
    proto.variables.ids.extend(range(n))
    proto.variables.lower_bounds.extend(sf.col_lb.tolist())
    proto.variables.upper_bounds.extend(sf.col_ub.tolist())
    proto.variables.integers.extend((sf.integer & (not relax)).tolist())
    nz = np.flatnonzero(sf.c)
    proto.objective.offset = float(sf.offset)
    proto.objective.linear_coefficients.ids.extend(nz.tolist())
    proto.objective.linear_coefficients.values.extend(sf.c[nz].tolist())
    proto.linear_constraints.ids.extend(range(m))
    proto.linear_constraints.lower_bounds.extend(sf.row_lb.tolist())
    proto.linear_constraints.upper_bounds.extend(sf.row_ub.tolist())
    rows = np.repeat(np.arange(m), np.diff(sf.A_start))
    keep = sf.A_value != 0.0
    matrix = proto.linear_constraint_matrix
    matrix.row_ids.extend(rows[keep].tolist())
    matrix.column_ids.extend(sf.A_index[keep].tolist())
    matrix.coefficients.extend(sf.A_value[keep].tolist())
    model = mathopt.Model.from_model_proto(proto)
    variables = list(model.variables())
    params = mathopt.SolveParameters(
        enable_output=bool(verbose),
        relative_gap_tolerance=gaps[1] / 2,
        absolute_gap_tolerance=gaps[0] / 2,
    )
    for name, value in SCIP_PARAMS.items():
        params.gscip.bool_params[name] = value
    params.gscip.real_params["numerics/feastol"] = FEASIBILITY_TOL
    model_params = None
    if start and not relax:
        hint = mathopt.SolutionHint(variable_values={variables[j]: v for j, v in start.items()})
        model_params = mathopt.ModelSolveParameters(solution_hints=[hint])
    if time_limit_s is not None:
        left = float(time_limit_s) - (time.perf_counter() - began)
        if left <= 0:  # a 1000 x 16 model took seconds to hand over: SCIP would only add more
            elapsed = time.perf_counter() - began
            return _Raw("time_limit", None, None, elapsed, 0, "time limit reached before SCIP ran")
        params.time_limit = timedelta(seconds=left)
    result = mathopt.solve(
        model, mathopt.SolverType.GSCIP, params=params, model_params=model_params
    )
    elapsed = time.perf_counter() - began
    T = mathopt.TerminationReason
    reason, limit = result.termination.reason, result.termination.limit
    if reason == T.OPTIMAL:
        termination = "optimal"
    elif reason in (T.INFEASIBLE, T.INFEASIBLE_OR_UNBOUNDED):
        termination = "infeasible"
    elif reason in (T.FEASIBLE, T.NO_SOLUTION_FOUND) and limit == mathopt.Limit.TIME:
        termination = "time_limit"
    else:
        termination = "other"
    values = None
    if result.has_primal_feasible_solution():
        values = np.array(result.variable_values(variables), dtype=float)
    bound = None
    if termination != "infeasible":
        bound = _finite(result.termination.objective_bounds.dual_bound)
    nodes = None if relax else int(result.solve_stats.node_count)
    message = f"{reason.name} {limit.name if limit else ''} {result.termination.detail}"
    return _Raw(termination, values, bound, elapsed, nodes, message.strip())


# --------------------------------------------------------------------------- CP-SAT

# CP-SAT solves integer programs. OR-Tools' linear-solver wrapper (pywraplp "CP_SAT") converts
# a float model itself: it turned our continuous [0,1] columns, the working set M included, into
# Booleans (memory rows became infeasible) and scaled the objective by 2^16 with 0.4 % error per
# coefficient (plans 6e-4 above the optimum reported as optimal). We scale ourselves, from the
# model `scale` returns (largest coefficient of each row and of the objective ~1):
# - Columns (all >= 0): integers and `binary_at_optimum` columns stay 0/1; every other
#   continuous column (M, P) is x_j = y_j * 2^-GRID_BITS with y_j integer.
# - Row i is multiplied by S_i = 2^ROW_BITS, or more where a grid column's coefficient needs it
#   to become an integer (up to 2^(ROW_BITS + 8)).
# - Relaxed model (its bound is a bound of the float model): a <= side gets the coefficients
#   rounded down and a >= side rounded up (columns are >= 0, so a float solution still
#   satisfies them), and each side is widened by |k_j| per grid column, as a float value may lie
#   between grid points. Rows whose coefficients are integers are kept exactly. The objective is
#   multiplied by 2^OBJ_BITS and rounded down on 0/1 columns; on a grid column it is rounded to
#   nearest and its error times the column's range, with the grid rounding, is charged to the
#   bound: float bound = (CP-SAT bound - charges) / 2^OBJ_BITS.
# - The plan: the 0/1 columns CP-SAT returns, completed by an LP over the grid columns (HiGHS,
#   `_complete`), so the point is a float solution with exact M and P. The relaxation is
#   ~2^-ROW_BITS relative per coefficient; when its plan has no completion (it overruns a row by
#   that much), a restricted model (coefficients rounded the other way, no widening: every
#   integer point is a float solution) is solved for the plan, and the relaxed bound is kept.
# CP-SAT 9.15's presolve wrongly proved infeasibility with coefficients ~2^36 (a 4x4 energy
# instance), so magnitudes stay near 2^30 and an infeasibility claim is checked (plan.solve).
ROW_BITS = 28
OBJ_BITS = 36
GRID_BITS = 26


def _cpsat(sf, time_limit_s, gaps, threads, verbose, start, boolean) -> _Raw:
    from ortools.sat.python import cp_model

    if (sf.col_lb < 0).any():
        raise ValueError("the CP-SAT backend expects columns >= 0")
    grid = ~sf.integer & ~boolean
    step = np.where(grid, 2.0**GRID_BITS, 1.0)  # y_j = x_j * step_j
    cap, sound = _column_caps(sf)
    lo = np.where(grid, np.floor(sf.col_lb * step), np.ceil(sf.col_lb - 1e-9))
    hi_float = np.where(np.isfinite(sf.col_ub), sf.col_ub, cap)
    hi = np.where(grid, np.ceil(hi_float * step), np.floor(hi_float + 1e-9))
    began = time.perf_counter()
    model, ys, charge = _cp_model(sf, grid, step, lo, hi, start, relaxed=True)
    left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - began)
    solver, code = _cp_solve(model, left, gaps, threads, verbose)  # the limit covers _cp_model
    values = bound = None
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = np.array([solver.value(y) for y in ys], dtype=float) / step
    if code == cp_model.OPTIMAL:
        termination = "optimal"
    elif code == cp_model.INFEASIBLE:
        termination = "infeasible"
    elif code in (cp_model.FEASIBLE, cp_model.UNKNOWN) and time_limit_s is not None:
        termination = "time_limit"  # the only limit we set
    else:
        termination = "other"
    if termination in ("optimal", "time_limit") and sound:
        best = solver.best_objective_bound
        if np.isfinite(best):
            bound = (best - charge) / 2.0**OBJ_BITS + sf.offset
    message = f"{solver.status_name(code)} {solver.solution_info()}"
    if code == cp_model.MODEL_INVALID:
        message += f": {model.validate()}"
    if values is not None:
        polished = _complete(sf, values, grid)
        if polished is None:  # the relaxation's plan overruns a row: solve the restricted model
            left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - began)
            hint = {j: v for j, v in enumerate(values) if not grid[j]}
            model, ys, _ = _cp_model(sf, grid, step, lo, hi, hint, relaxed=False)
            solver, code = _cp_solve(model, left, gaps, threads, verbose)
            message += f"; restricted model: {solver.status_name(code)}"
            if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                values = np.array([solver.value(y) for y in ys], dtype=float) / step
                polished = _complete(sf, values, grid)
            if polished is None and termination == "optimal":
                termination = "other"
        values = polished
    return _Raw(termination, values, bound, time.perf_counter() - began, None, message.strip())


def _cp_model(sf, grid, step, lo, hi, start, relaxed: bool):
    """The integer model of the scaled `sf` (see above): relaxed, or restricted when not
    `relaxed`. Returns (model, column variables, the bound's charge in objective units)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    ys = [model.new_int_var(int(lo[j]), int(hi[j]), f"y{j}") for j in range(len(sf.c))]
    coef_all = sf.A_value / step[sf.A_index]
    for i in range(len(sf.row_lb)):
        at = slice(sf.A_start[i], sf.A_start[i + 1])
        idx, a = sf.A_index[at], coef_all[at]
        if len(idx) == 0:
            continue
        S = 2.0**ROW_BITS
        on_grid = np.abs(a[grid[idx]])
        if len(on_grid):
            S = min(2.0 ** (ROW_BITS + 8), max(S, float(_pow2(1.0 / on_grid.min())) * 2))
        k = a * S
        lb, ub = sf.row_lb[i] * S, sf.row_ub[i] * S
        terms = [(kj, ys[j], grid[j]) for kj, j in zip(k, idx, strict=True)]
        if np.all(k == np.round(k)):
            g = int(np.gcd.reduce(np.abs(k).astype(np.int64)))
            slack = float(np.abs(k[grid[idx]]).sum()) if relaxed else 0.0
            expr = sum(int(kj) // g * y for kj, y, _ in terms)
            if np.isfinite(ub):
                model.add(expr <= int(np.floor((ub + slack) / g)))
            if np.isfinite(lb):
                model.add(expr >= int(np.ceil((lb - slack) / g)))
            continue
        for side in ("ub", "lb"):
            rhs = ub if side == "ub" else lb
            if not np.isfinite(rhs):
                continue
            down = (side == "ub") == relaxed  # round coefficients down
            coef = np.floor(k) if down else np.ceil(k)
            slack = float(np.abs(coef[grid[idx]]).sum()) if relaxed else 0.0
            expr = sum(int(c) * y for c, (_, y, _) in zip(coef, terms, strict=True))
            if side == "ub":
                model.add(expr <= int(np.floor(rhs + slack)))
            else:
                model.add(expr >= int(np.ceil(rhs - slack)))
    exact = sf.c / step * 2.0**OBJ_BITS
    obj = np.where(grid, np.round(exact), np.floor(exact))
    spread = np.maximum(np.abs(lo), np.abs(hi))
    charge = float((np.abs(obj) + np.abs(obj - exact) * spread)[grid].sum())
    model.minimize(sum(int(obj[j]) * ys[j] for j in np.flatnonzero(obj)))
    for j, v in start.items():
        model.add_hint(ys[j], int(np.clip(round(v * step[j]), lo[j], hi[j])))
    return model, ys, charge


def _cp_solve(model, time_limit_s, gaps, threads, verbose):
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    p = solver.parameters
    if time_limit_s is not None:
        p.max_time_in_seconds = max(float(time_limit_s), 0.001)
    if threads is not None:
        p.num_workers = int(threads)
    p.relative_gap_limit = gaps[1] / 2
    p.absolute_gap_limit = gaps[0] / 2 * 2.0**OBJ_BITS
    p.log_search_progress = bool(verbose)
    return solver, solver.solve(model)


def _complete(sf: StandardForm, x: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """The best float completion of x's 0/1 columns (an LP over the grid columns, HiGHS), or
    None when they have none: CP-SAT's grid values are replaced by exact ones."""
    fixed = np.where(grid, sf.col_lb, np.round(x)), np.where(grid, sf.col_ub, np.round(x))
    lp = _highs(replace(sf, col_lb=fixed[0], col_ub=fixed[1]), None, True, (0, 0), None, False, {})
    return lp.values if lp.termination == "optimal" else None


def _column_caps(sf: StandardForm) -> tuple[np.ndarray, bool]:
    """A finite upper bound for each column without one, valid at some optimum, and whether
    every such column got one. A column with cost >= 0 that only appears with a positive
    coefficient on the >= side of rows (the period P) equals the largest lower bound its rows
    put on it at an optimum, which the largest activity of the rest of each row bounds."""
    n, m = len(sf.c), len(sf.row_lb)
    cap = np.full(n, 2.0**20)
    sound = True
    rows = np.repeat(np.arange(m), np.diff(sf.A_start))
    reach = np.where(np.isfinite(sf.col_ub), np.maximum(np.abs(sf.col_ub), np.abs(sf.col_lb)), 0)
    activity = np.zeros(m)
    np.add.at(activity, rows, np.abs(sf.A_value) * reach[sf.A_index])
    for j in np.flatnonzero(~np.isfinite(sf.col_ub)):
        at = np.flatnonzero(sf.A_index == j)
        r, a = rows[at], sf.A_value[at]
        others = sf.A_index[np.isin(rows, r)]
        ok = sf.c[j] >= 0 and (a > 0).all() and not np.isfinite(sf.row_ub[r]).any()
        ok = ok and np.isfinite(sf.col_ub[others[others != j]]).all()
        if not ok or not np.isfinite(sf.row_lb[r]).all():
            sound = False
            continue
        cap[j] = max(0.0, float(np.max((sf.row_lb[r] + activity[r]) / a)), sf.col_lb[j])
    return cap, sound


# --------------------------------------------------------------------------- Pyomo


def solve_pyomo(
    milp: Milp,
    name: str,
    time_limit_s: float | None = None,
    relax: bool = False,
    mip_rel_gap: float = 1e-6,
    threads: int | None = None,
    verbose: bool = False,
    start: dict[int, float] | None = None,
) -> SolverResult:
    """Solve `milp.to_pyomo()` with Pyomo's solver `name` (its legacy interface, which every
    Pyomo solver offers). The MIP start and thread count are not passed on: solvers differ in
    how they take them."""
    from pyomo.opt import TerminationCondition as TC

    check_solver(PYOMO_PREFIX + name)
    model, columns = milp.pyomo_columns()
    if relax:
        for var in columns:
            var.domain = pyo.Reals
    opt = pyo.SolverFactory(name)
    kw: dict = {"tee": bool(verbose), "load_solutions": False}
    if time_limit_s is not None:
        kw["timelimit"] = float(time_limit_s)
    began = time.perf_counter()
    res = opt.solve(model, **kw)
    elapsed = time.perf_counter() - began
    tc = res.solver.termination_condition
    values = objective = bound = None
    if len(res.solution) > 0 and tc not in (TC.infeasible, TC.infeasibleOrUnbounded):
        model.solutions.load_from(res)
        values = np.array([np.nan if v.value is None else float(v.value) for v in columns])
        objective = float(pyo.value(model.objective))
    lower = res.problem.lower_bound
    if lower is not None and np.isfinite(float(lower)):
        bound = float(lower)
    termination = {
        TC.optimal: "optimal",
        TC.infeasible: "infeasible",
        TC.infeasibleOrUnbounded: "infeasible",
        TC.maxTimeLimit: "time_limit",
    }.get(tc, "other")
    unit = scale(milp.matrix)[1].objective_unit
    return SolverResult(
        termination,
        values,
        objective,
        bound,
        ABS_GAP * unit,
        mip_rel_gap,
        elapsed,
        PYOMO_PREFIX + name,
        None,
        str(tc),
    )
