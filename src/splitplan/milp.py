"""The placement MILP of ``models/formulation.md``: one Pyomo model, a block per constraint family.

Symbols follow the formulation: x[v,k] (layer v runs on node k), z[t,p,q] (tensor t goes from p to
q, single consumer), f[t,a] (flow of tensor t on arc a, latency objective), r[t,q] / y[t,p,q]
(tensor t needed at q / sent from p to q, several consumers), e[t,j] / u[t,j,p,q] / s[t,j,p]
(encoded tensors, §10: t's form is j / t is sent from p to q in form j / p encodes t in form j),
M[k] (working memory of node k) and P (the period). Each block's docstring names the section of
the cost model it encodes.

The model is recorded as arrays while it is built: each variable family is a range of columns
and each constraint family a range of rows, named after its block and documented (`Milp.families`).
That array model is what the solvers receive (`Milp.matrix`); `Milp.to_pyomo()` builds the same
model as a Pyomo `ConcreteModel` with a block per family, for any solver Pyomo knows. While the
model is built, variables are column indices and expressions lists of (coefficient, column).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import families
from .cost import Tables
from .cuts import add_cuts, busiest_layer_s
from .families import BuildTimeout, Terms
from .instance import Instance

__all__ = ["BuildTimeout", "Family", "Milp", "StandardForm", "build_milp", "merge_duplicates"]


INF = float("inf")


@dataclass
class StandardForm:
    """min c.x + offset s.t. row_lb <= A x <= row_ub, col_lb <= x <= col_ub, x[integer] integral."""

    c: np.ndarray
    offset: float
    A_start: np.ndarray  # CSR row starts
    A_index: np.ndarray
    A_value: np.ndarray
    row_lb: np.ndarray
    row_ub: np.ndarray
    col_lb: np.ndarray
    col_ub: np.ndarray
    integer: np.ndarray  # bool per column
    columns: list[str] | None = None  # column names, when read from a Pyomo model
    # A lower bound > 0 on c.x + offset over every feasible point where one is known, else 0:
    # `solvers.scale` makes it the objective's unit at most, so that the optimum is >= ~1 in
    # the solvers' units (their absolute tolerances, 1e-6, stay relative).
    objective_floor: float = 0.0


def merge_duplicates(
    start: np.ndarray, index: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum repeated (row, column) entries of a CSR matrix (HiGHS rejects them)."""
    rows = np.repeat(np.arange(len(start) - 1), np.diff(start))
    order = np.lexsort((index, rows))
    rows, index, value = rows[order], index[order], value[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (index[1:] != index[:-1])
    at = np.flatnonzero(first)
    value = np.add.reduceat(value, at) if len(at) else value
    rows, index = rows[at], index[at]
    start = np.searchsorted(rows, np.arange(len(start)), side="left").astype(np.int64)
    return start, index, value


@dataclass(frozen=True)
class Family:
    """A family of variables (a range of columns) or of constraints (a range of rows)."""

    kind: str  # "var" or "con"
    block: str  # the block it belongs to ("" for the top level)
    name: str
    doc: str
    keys: list  # the index of each column / row, in order; [None] for a scalar variable
    start: int  # its first column / row
    bounds: tuple[float | None, float | None] = (0.0, 1.0)
    binary: bool = False

    @property
    def stop(self) -> int:
        return self.start + len(self.keys)

    def label(self, key: object) -> str:
        """Pyomo's name for the member `key` (e.g. `transfer.z[3,0,1]`)."""
        head = f"{self.block}.{self.name}" if self.block else self.name
        if key is None:
            return head
        index = ",".join(map(str, key)) if isinstance(key, tuple) else str(key)
        return f"{head}[{index}]"


class _Recorder:
    """Records variable and constraint families as the arrays of a `StandardForm`.

    Variables are column indices; a constraint family's rows are {index: (lb, terms, ub)} with
    terms (coefficient, column). Rows go straight into CSR arrays, so the memory of the model is
    that of its matrix (no per-variable Python objects beyond the key lists)."""

    def __init__(self) -> None:
        self.n_cols = 0
        self.col_lb: list[float] = []
        self.col_ub: list[float] = []
        self.integer: list[bool] = []
        self.starts: list[int] = [0]
        self.index: list[int] = []
        self.value: list[float] = []
        self.row_lb: list[float] = []
        self.row_ub: list[float] = []
        self.families: list[Family] = []
        self.blocks: dict[str, str] = {"": "the placement"}
        self.objective: Terms = []
        self.offset = 0.0

    def block(self, name: str, doc: str) -> str:
        """Declare block `name` (a group of families, one per section of the formulation)."""
        self.blocks[name] = doc
        return name

    def vars(
        self,
        block: str,
        name: str,
        keys: list,
        doc: str,
        bounds: tuple[float | None, float | None] = (0, 1),
        binary: bool = False,
    ) -> dict:
        """Add variable family `name` over `keys` to `block` (0/1 integers when `binary`);
        returns {key: column}."""
        if not keys:
            return {}
        start, n = self.n_cols, len(keys)
        self.n_cols += n
        lb, ub = bounds
        self.col_lb.extend([-INF if lb is None else float(lb)] * n)
        self.col_ub.extend([INF if ub is None else float(ub)] * n)
        self.integer.extend([binary] * n)
        self.families.append(Family("var", block, name, doc, list(keys), start, bounds, binary))
        return dict(zip(keys, range(start, start + n), strict=True))

    def var(
        self, block: str, name: str, doc: str, bounds: tuple[float | None, float | None]
    ) -> int:
        """Add one continuous variable; returns its column."""
        start = self.n_cols
        self.vars(block, name, [None], doc, bounds)
        return start

    def constraints(self, block: str, name: str, rows: dict, doc: str) -> None:
        """Add constraint family `name` to `block`: rows maps an index to (lb, terms, ub)."""
        if not rows:
            return
        start = len(self.row_lb)
        index, value, starts = self.index, self.value, self.starts
        for lb, terms, ub in rows.values():
            for coef, col in terms:
                if coef != 0.0:
                    index.append(col)
                    value.append(coef)
            starts.append(len(index))
            self.row_lb.append(-INF if lb is None else float(lb))
            self.row_ub.append(INF if ub is None else float(ub))
        self.families.append(Family("con", block, name, doc, list(rows), start))

    def standard_form(self) -> StandardForm:
        c = np.zeros(self.n_cols)
        for coef, col in self.objective:
            c[col] += coef
        A_start, A_index, A_value = merge_duplicates(
            np.array(self.starts, dtype=np.int64),
            np.array(self.index, dtype=np.int64),
            np.array(self.value, dtype=float),
        )
        return StandardForm(
            c=c,
            offset=float(self.offset),
            A_start=A_start,
            A_index=A_index,
            A_value=A_value,
            row_lb=np.array(self.row_lb, dtype=float),
            row_ub=np.array(self.row_ub, dtype=float),
            col_lb=np.array(self.col_lb, dtype=float),
            col_ub=np.array(self.col_ub, dtype=float),
            integer=np.array(self.integer, dtype=bool),
        )


@dataclass
class Milp:
    """A built model: its matrix, its families, and the maps to read a solution back."""

    instance: Instance
    tables: Tables
    x: dict[tuple[int, int], int]  # x[v,k] -> column
    transfer_model: str  # "flow" or "pair": how single-consumer transfers are encoded (§9)
    matrix: StandardForm = field(repr=False)
    families: list[Family] = field(repr=False)
    blocks: dict[str, str] = field(repr=False)  # block name -> doc
    form: dict[tuple[int, int], int] = field(default_factory=dict)  # e[t,j] -> column, j >= 1

    def family(self, block: str, name: str) -> Family:
        """The variable or constraint family `name` of `block`."""
        for fam in self.families:
            if fam.block == block and fam.name == name:
                return fam
        raise KeyError(f"no family {block}.{name}")

    def column_names(self) -> list[str]:
        """Pyomo's name of every column, in column order."""
        names: list[str] = []
        for fam in self.families:
            if fam.kind == "var":
                names += [fam.label(key) for key in fam.keys]
        return names

    def read_assignment(self, values: np.ndarray) -> dict[str, str]:
        """{layer: node} from a solution's column values, in topological order."""
        tb = self.tables
        chosen = {tb.layers[v]: tb.nodes[k] for (v, k), j in self.x.items() if values[j] > 0.5}
        return {name: chosen[name] for name in tb.layers}

    def read_encodings(self, values: np.ndarray) -> dict[str, str]:
        """{tensor: form} of the tensors whose chosen form is not raw (§10)."""
        tensors = self.tables.tensors
        return {
            tensors[ti].name: tensors[ti].encodings[j - 1].name
            for (ti, j), col in self.form.items()
            if values[col] > 0.5
        }

    def start_vector(self, assignment: Mapping[str, str]) -> dict[int, float]:
        """A MIP start: the x columns of `assignment` ({layer: node}); the solver completes it."""
        tb = self.tables
        return {
            j: float(assignment.get(tb.layers[v]) == tb.nodes[k]) for (v, k), j in self.x.items()
        }

    def to_pyomo(self):
        """The same model as a Pyomo `ConcreteModel`: a block per section, a `Var` per variable
        family and a `Constraint` per constraint family, each with its doc (needs pyomo)."""
        return self.pyomo_columns()[0]

    def pyomo_columns(self) -> tuple:
        """(`to_pyomo()`'s model, its variables in column order)."""
        import pyomo.environ as pyo
        from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

        sf = self.matrix
        m = pyo.ConcreteModel(name=self.instance.name or "splitplan")
        for name, doc in self.blocks.items():
            if name:
                m.add_component(name, pyo.Block(doc=doc))
        handles: list = [None] * len(sf.c)
        for fam in self.families:
            if fam.kind != "var":
                continue
            block = getattr(m, fam.block) if fam.block else m
            domain = pyo.Binary if fam.binary else pyo.Reals
            if fam.keys == [None]:
                var = pyo.Var(doc=fam.doc, bounds=fam.bounds, domain=domain)
                block.add_component(fam.name, var)
                handles[fam.start] = var
                continue
            dimen = len(fam.keys[0]) if isinstance(fam.keys[0], tuple) else 1
            block.add_component(f"{fam.name}_index", pyo.Set(initialize=fam.keys, dimen=dimen))
            var = pyo.Var(
                getattr(block, f"{fam.name}_index"), doc=fam.doc, bounds=fam.bounds, domain=domain
            )
            block.add_component(fam.name, var)
            for j, key in enumerate(fam.keys, fam.start):
                handles[j] = var[key]

        def linear(cols, coefs, constant: float = 0.0) -> LinearExpression:
            args: list = [
                MonomialTermExpression((float(c), handles[j]))
                for j, c in zip(cols, coefs, strict=True)
            ]
            if constant or not args:
                args.append(float(constant))
            return LinearExpression(args)

        def bound(value: float) -> float | None:
            return None if np.isinf(value) else float(value)

        for fam in self.families:
            if fam.kind != "con":
                continue
            block = getattr(m, fam.block) if fam.block else m
            dimen = len(fam.keys[0]) if isinstance(fam.keys[0], tuple) else 1
            block.add_component(f"{fam.name}_index", pyo.Set(initialize=fam.keys, dimen=dimen))
            row_of = dict(zip(fam.keys, range(fam.start, fam.stop), strict=True))

            def rule(_b, *key, row_of=row_of):
                i = row_of[key if len(key) > 1 else key[0]]
                a, b = sf.A_start[i], sf.A_start[i + 1]
                if a == b:  # no variable left: a constant row
                    ok = sf.row_lb[i] <= 0.0 <= sf.row_ub[i]
                    return pyo.Constraint.Feasible if ok else pyo.Constraint.Infeasible
                body = linear(sf.A_index[a:b], sf.A_value[a:b])
                return (bound(sf.row_lb[i]), body, bound(sf.row_ub[i]))

            index = getattr(block, f"{fam.name}_index")
            block.add_component(fam.name, pyo.Constraint(index, rule=rule, doc=fam.doc))
        cols = np.flatnonzero(sf.c)
        m.objective = pyo.Objective(expr=linear(cols, sf.c[cols], sf.offset), sense=pyo.minimize)
        return m, handles


def build_milp(
    inst: Instance,
    deadline: float | None = None,
    cuts: bool = True,
    incumbent_s: float | None = None,
) -> Milp:
    """Build the MILP of an instance (see models/formulation.md): the families of
    `splitplan.families`, in order, and the objective over the costs they return. Raises
    `BuildTimeout` once `time.perf_counter()` passes `deadline` (checked as it goes). `cuts=False`
    leaves out the valid inequalities of `splitplan.cuts` (to measure what they bring).
    `incumbent_s`, the period of a feasible plan (throughput objective), adds the co-location
    rows of §9: the model then keeps every plan whose period is at most the incumbent's (so its
    optimum and every bound it proves hold for the instance), not the worse ones."""
    rec = _Recorder()
    ctx = families.Context(inst, rec, deadline)
    costs = families.define_assignment(ctx)
    cases = families.classify_tensors(ctx)
    ctx.tick(0)
    costs += families.define_transfers(ctx, cases)
    ctx.tick(0)
    encoded, form = families.define_encoded_transfers(ctx, cases.encoded)
    costs += encoded
    families.define_memory(ctx)
    families.define_latency_limit(ctx, costs)
    families.define_accuracy_limit(ctx, costs)
    families.define_objective(ctx, costs)
    ctx.tick(0)
    period_bound = add_cuts(ctx, incumbent_s) if cuts else 0.0
    sf = rec.standard_form()
    ctx.tick(0)  # the period's rows and the arrays took 0.6 s each at 1000 x 16
    sf.objective_floor = _objective_floor(ctx, sf, period_bound)
    return Milp(
        inst,
        ctx.tb,
        ctx.x,
        ctx.transfer_model,
        sf,
        rec.families,
        rec.blocks,
        form,
    )


def _objective_floor(ctx: families.Context, sf: StandardForm, period_bound: float) -> float:
    """A lower bound on the objective of every plan, from the tables (`StandardForm.
    objective_floor`): for the period, the busiest layer's best time and the period cut's bound
    (`cuts`); for a weighted sum of latency, energy and accuracy, whose terms are all >= 0, the
    constants plus each layer's cheapest placement term (every layer runs on one node)."""
    tb = ctx.tb
    if ctx.weights is None:
        return max(busiest_layer_s(tb), period_bound)
    if (sf.c < 0).any():
        return 0.0
    cheapest = np.full(len(tb.layers), np.inf)
    for (v, _), j in ctx.x.items():
        cheapest[v] = min(cheapest[v], sf.c[j])
    return float(sf.offset + cheapest[np.isfinite(cheapest)].sum())
