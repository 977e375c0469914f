"""HiGHS and OR-Tools behind one call: `solve_milp(milp, solver=...)`.

The matrix of the Pyomo model (`Milp.matrix`, recorded row by row while the model is built) is
handed to the solver's own API; `standard_form(model)` reads the same matrix from any linear Pyomo
model by walking its expressions (slower; the tests check the two agree). Pyomo's generic writers
are an order of magnitude slower still at the sizes of the benchmark. What comes back is
normalised to a `SolverResult`: status, objective, best bound, column values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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


@dataclass
class SolverResult:
    status: str  # optimal | feasible | infeasible | time_limit | error
    objective: float | None
    bound: float | None
    values: np.ndarray | None  # column values, None when no solution was found
    solve_time_s: float
    solver: str
    nodes: int | None = None
    message: str = ""


def solve_standard_form(
    sf: StandardForm,
    solver: str = "highs",
    time_limit_s: float | None = None,
    relax: bool = False,
    mip_rel_gap: float = 1e-6,
    threads: int | None = None,
    verbose: bool = False,
    start: dict[int, float] | None = None,
) -> SolverResult:
    """Solve a `StandardForm` with HiGHS, OR-Tools SCIP or OR-Tools CP-SAT.

    `relax=True` drops integrality (the LP relaxation, for measuring the formulation's gap).
    `start` maps column indices to the values of a known solution (a MIP start; the solver
    completes the other columns).
    """
    if solver == "highs":
        return _highs(sf, time_limit_s, relax, mip_rel_gap, threads, verbose, start)
    if solver in ("ortools", "ortools-cpsat"):
        backend = "CP_SAT" if solver == "ortools-cpsat" else "SCIP"
        return _ortools(
            sf, backend, time_limit_s, relax, mip_rel_gap, threads, solver, verbose, start
        )
    raise ValueError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}")


def solve_milp(milp: Milp, solver: str = "highs", **kw) -> tuple[SolverResult, StandardForm]:
    """Solve a built MILP: its matrix goes to HiGHS or OR-Tools directly; `pyomo:NAME` solves
    `milp.to_pyomo()` with Pyomo's solver NAME instead (e.g. `pyomo:appsi_highs`, `pyomo:cbc`)."""
    if solver.startswith(PYOMO_PREFIX):
        return solve_pyomo(milp, solver.removeprefix(PYOMO_PREFIX), **kw), milp.matrix
    return solve_standard_form(milp.matrix, solver, **kw), milp.matrix


# --------------------------------------------------------------------------- HiGHS


def _highs(sf, time_limit_s, relax, mip_rel_gap, threads, verbose, start) -> SolverResult:
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(verbose))
    h.setOptionValue("log_to_console", bool(verbose))
    h.setOptionValue("mip_rel_gap", mip_rel_gap)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    lp = highspy.HighsLp()
    lp.num_col_ = len(sf.c)
    lp.num_row_ = len(sf.row_lb)
    lp.col_cost_ = sf.c
    lp.offset_ = sf.offset
    lp.col_lower_ = sf.col_lb
    lp.col_upper_ = sf.col_ub
    lp.row_lower_ = sf.row_lb
    lp.row_upper_ = sf.row_ub
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = sf.A_start
    lp.a_matrix_.index_ = sf.A_index
    lp.a_matrix_.value_ = sf.A_value
    if not relax and sf.integer.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in sf.integer
        ]
    began = time.perf_counter()
    h.passModel(lp)
    if start and not relax:
        cols = np.array(list(start), dtype=np.int32)
        h.setSolution(len(cols), cols, np.array([start[j] for j in cols], dtype=float))
    h.run()
    elapsed = time.perf_counter() - began
    ms = h.getModelStatus()
    info = h.getInfo()
    S = highspy.HighsModelStatus
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    mip = not relax and bool(sf.integer.any())
    values = np.array(h.getSolution().col_value) if has_solution else None
    objective = info.objective_function_value if has_solution else None
    bound = info.mip_dual_bound if mip else objective
    if ms == S.kOptimal:
        status = "optimal"
    elif ms in (S.kInfeasible, S.kUnboundedOrInfeasible):
        status = "infeasible"
    elif ms == S.kTimeLimit:
        status = "time_limit"
    elif has_solution:
        status = "feasible"
    else:
        status = "error"
    if status == "optimal" and not mip:
        bound = objective
    nodes = int(info.mip_node_count) if mip else None
    if bound is not None and not np.isfinite(bound):
        bound = None
    return SolverResult(
        status, objective, bound, values, elapsed, "highs", nodes, h.modelStatusToString(ms)
    )


# --------------------------------------------------------------------------- OR-Tools


def _ortools(
    sf, backend, time_limit_s, relax, mip_rel_gap, threads, name, verbose, start
) -> SolverResult:
    from ortools.linear_solver import pywraplp

    s = pywraplp.Solver.CreateSolver(backend)
    if s is None:  # pragma: no cover - every ortools wheel ships SCIP and CP-SAT
        raise RuntimeError(f"OR-Tools was built without {backend}")
    if verbose:
        s.EnableOutput()
    if time_limit_s is not None:
        s.SetTimeLimit(int(max(time_limit_s, 0.001) * 1000))
    if threads is not None:
        s.SetNumThreads(int(threads))
    infinity = s.infinity()

    def fin(value: float) -> float:
        return value if np.isfinite(value) else (infinity if value > 0 else -infinity)

    cols = []
    for j in range(len(sf.c)):
        lb, ub = fin(sf.col_lb[j]), fin(sf.col_ub[j])
        if sf.integer[j] and not relax:
            cols.append(s.IntVar(lb, ub, ""))
        else:
            cols.append(s.NumVar(lb, ub, ""))
    starts, index, value = sf.A_start.tolist(), sf.A_index.tolist(), sf.A_value.tolist()
    for i in range(len(sf.row_lb)):
        row = s.Constraint(fin(sf.row_lb[i]), fin(sf.row_ub[i]))
        for p in range(starts[i], starts[i + 1]):
            row.SetCoefficient(cols[index[p]], value[p])
    obj = s.Objective()
    for j in np.flatnonzero(sf.c):
        obj.SetCoefficient(cols[j], float(sf.c[j]))
    obj.SetOffset(sf.offset)
    obj.SetMinimization()
    if start and not relax:
        s.SetHint([cols[j] for j in start], [float(v) for v in start.values()])
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(params.RELATIVE_MIP_GAP, mip_rel_gap)
    began = time.perf_counter()
    code = s.Solve(params)
    elapsed = time.perf_counter() - began
    S = pywraplp.Solver
    values = objective = bound = None
    if code in (S.OPTIMAL, S.FEASIBLE):
        values = np.array([v.solution_value() for v in cols])
        objective = obj.Value()
        bound = objective if (relax or not sf.integer.any()) else obj.BestBound()
    timed_out = time_limit_s is not None and elapsed >= 0.98 * time_limit_s
    if code == S.OPTIMAL:
        status = "optimal"
    elif code == S.INFEASIBLE:
        status = "infeasible"
    elif code == S.FEASIBLE or code == S.NOT_SOLVED:
        status = "time_limit" if timed_out else ("feasible" if values is not None else "error")
    else:
        status = "error"
    if bound is not None and not np.isfinite(bound):
        bound = None
    nodes = int(s.nodes()) if backend == "SCIP" and not relax else None
    return SolverResult(status, objective, bound, values, elapsed, name, nodes, f"code {code}")


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
    if tc == TC.optimal:
        status = "optimal" if values is not None else "error"
    elif tc in (TC.infeasible, TC.infeasibleOrUnbounded):
        status = "infeasible"
    elif tc == TC.maxTimeLimit:
        status = "time_limit"
    else:
        status = "feasible" if values is not None else "error"
    return SolverResult(
        status, objective, bound, values, elapsed, PYOMO_PREFIX + name, None, str(tc)
    )
