"""splitplan: optimal multi-split placement of DNN layers across device, edge and cloud nodes.

    >>> import splitplan
    >>> inst = splitplan.load_instance("instances/three-tier-chain.json")
    >>> plan = splitplan.solve(inst, solver="highs")
    >>> plan.assignment, plan.objective, plan.gap

The solver core (Pyomo, HiGHS, OR-Tools) is imported when `solve` is first called; torch is never
imported here.
"""

from .cost import Evaluation, Transfer, evaluate
from .errors import ExitCode, SplitplanError
from .instance import (
    DNN,
    Constraints,
    Encoding,
    Instance,
    InstanceError,
    Layer,
    Link,
    Network,
    Node,
    Objective,
    instance_from_dict,
    instance_to_dict,
    load_instance,
    save_instance,
)
from .plan import Plan, solve

__all__ = [
    "DNN",
    "Constraints",
    "Encoding",
    "Evaluation",
    "ExitCode",
    "Instance",
    "InstanceError",
    "Layer",
    "Link",
    "Network",
    "Node",
    "Objective",
    "Plan",
    "SplitplanError",
    "Transfer",
    "evaluate",
    "instance_from_dict",
    "instance_to_dict",
    "load_instance",
    "save_instance",
    "solve",
]
__version__ = "0.1.0"
