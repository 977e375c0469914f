"""Online splitting under a fading channel: optimal stopping, one-stage look-ahead, placement.

The device holds a prefix of the model (its placement) and, for every inference, runs layers one
by one and decides at each layer boundary, from the channel it observes, whether to stop and send
the intermediate feature to the edge server. The static planner answers "where should the cut be
on average"; this module answers "where should it be right now".

    from splitplan import load_instance
    from splitplan.online import stages_from_instance, RayleighChannel, compare

    stages = stages_from_instance(load_instance("instances/three-tier-chain.json"))
    problem = stages.problem(w_time=1.0, lam=0.0)
    comp = compare(problem, RayleighChannel(10, 40e6), n=100_000)
    print(comp.table())

`study` runs all of `splitplan online` (planner cut, placement, SNR sweep) in one call and
returns an `OnlineStudy` whose `to_dict()` is the command's JSON.

numpy only (matplotlib is imported for the plot alone); `import splitplan` does not import this
package. The model, with the code's symbols, is written out in ``models/online.md``.
"""

from .channels import (
    SHIPPED_TRACES,
    Channel,
    ConstantChannel,
    GilbertElliottChannel,
    MarkovChannel,
    MarkovModel,
    RayleighChannel,
    Trace,
    TraceChannel,
    TraceError,
    bandwidth_for_rate,
    load_trace,
)
from .placement import MLPClosedForm, Placement, mlp_closed_form, mlp_dnn, place
from .problem import (
    OnlineError,
    Stages,
    StopProblem,
    objective_weights,
    planner_cut,
    stages_from_instance,
)
from .simulate import (
    POLICIES,
    Comparison,
    PolicyResult,
    compare,
    cost_vs_snr,
    plot_cost_vs_snr,
    policy_rules,
    realised_costs,
    simulate,
)
from .stopping import (
    Rule,
    StaticRule,
    ThresholdRule,
    backward_induction,
    best_static,
    evaluate,
    is_monotone,
    look_ahead,
    look_ahead_thresholds,
    persistence,
    static_costs,
)
from .studies import OnlineStudy, default_channel, study
from .widths import (
    WIDTHS_FORMAT,
    AdaptResult,
    Width,
    WidthsError,
    WidthSet,
    adapt_on_trace,
    load_widths,
    misses_fewer_than_as_accurate,
    pick,
    predicted_latency_s,
    widths_from_dict,
)

__all__ = [
    "POLICIES",
    "SHIPPED_TRACES",
    "WIDTHS_FORMAT",
    "AdaptResult",
    "Channel",
    "Comparison",
    "ConstantChannel",
    "GilbertElliottChannel",
    "MLPClosedForm",
    "MarkovChannel",
    "MarkovModel",
    "OnlineError",
    "OnlineStudy",
    "Placement",
    "PolicyResult",
    "RayleighChannel",
    "Rule",
    "Stages",
    "StaticRule",
    "StopProblem",
    "ThresholdRule",
    "Trace",
    "TraceChannel",
    "TraceError",
    "Width",
    "WidthSet",
    "WidthsError",
    "adapt_on_trace",
    "backward_induction",
    "bandwidth_for_rate",
    "best_static",
    "compare",
    "cost_vs_snr",
    "default_channel",
    "evaluate",
    "is_monotone",
    "load_trace",
    "load_widths",
    "look_ahead",
    "look_ahead_thresholds",
    "misses_fewer_than_as_accurate",
    "mlp_closed_form",
    "mlp_dnn",
    "objective_weights",
    "persistence",
    "pick",
    "place",
    "planner_cut",
    "plot_cost_vs_snr",
    "policy_rules",
    "predicted_latency_s",
    "realised_costs",
    "simulate",
    "stages_from_instance",
    "static_costs",
    "study",
    "widths_from_dict",
]
