"""Online splitting: stage data against the static evaluator, backward induction against brute
force, the look-ahead rule against theory, Monte Carlo against the analytic expectations, the MLP
placement closed form against a numeric scan, channels and traces."""

import itertools
from pathlib import Path

import numpy as np
import pytest

import splitplan
from splitplan import Instance, Link, Network, Node
from splitplan.cost import evaluate, tables
from splitplan.online import (
    SHIPPED_TRACES,
    ConstantChannel,
    GilbertElliottChannel,
    MarkovChannel,
    MarkovModel,
    OnlineError,
    RayleighChannel,
    StopProblem,
    TraceChannel,
    TraceError,
    backward_induction,
    bandwidth_for_rate,
    compare,
    cost_vs_snr,
    is_monotone,
    load_trace,
    look_ahead,
    look_ahead_thresholds,
    mlp_closed_form,
    mlp_dnn,
    place,
    planner_cut,
    plot_cost_vs_snr,
    simulate,
    stages_from_instance,
    static_costs,
)
from splitplan.online import evaluate as evaluate_rule

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = sorted(p for p in (ROOT / "instances").glob("*.json") if p.name != "reference.json")


def chain() -> Instance:
    return splitplan.load_instance(ROOT / "instances" / "three-tier-chain.json")


# --------------------------------------------------------------------------- stage data


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: p.stem)
def test_static_cut_costs_equal_the_evaluator(path):
    """On a constant channel at the link's rate, cutting after i layers costs exactly what the
    static cost model charges for that assignment: latency, and the device's own energy."""
    inst = splitplan.load_instance(path)
    tb = tables(inst)
    try:
        st = stages_from_instance(inst)
    except OnlineError as exc:
        pytest.skip(f"no online problem: {exc}")
    model = ConstantChannel(st.link_bytes_per_s).model(st.local_s)
    names = inst.layer_names
    compared = 0
    for w, lam in ((1.0, 0.0), (0.0, 1.0), (1.0, 0.3)):
        problem = st.problem(w, lam)
        costs = static_costs(problem, model)
        for i in range(problem.min_stop, problem.max_stop + 1):
            assignment = {n: st.device if j < i else st.server for j, n in enumerate(names)}
            ev = evaluate(inst, assignment)
            direct = (st.device, st.server)
            if any(t.source == st.device and t.route[:2] != direct for t in ev.transfers):
                continue  # the static model routes around the direct link: not comparable
            compared += 1
            device_j = ev.node_compute_s[st.device] * st.compute_power_w
            for t in ev.transfers:
                if t.source == st.device:  # the device pays for its own hop only
                    a, b = (tb.node_index[x] for x in t.route[:2])
                    device_j += tb.path_cost(t.size_bytes, a, b).energy_j
            ref = w * ev.latency_s + lam * device_j
            assert costs[i] == pytest.approx(ref, rel=1e-12), (path.stem, w, lam, i)
    assert compared > 0


def test_stage_data_of_a_dag_counts_skip_tensors():
    inst = splitplan.load_instance(ROOT / "instances" / "skip-dag.json")
    st = stages_from_instance(inst)
    names = list(st.layer_names)
    i = names.index("layer1.0.conv_a") + 1  # cut after conv_a: maxpool's output is still needed
    assert st.bytes[i] == 2 * 802816 and st.messages[i] == 2
    j = names.index("layer1.0.add") + 1  # after the add only its output crosses
    assert st.bytes[j] == 802816 and st.messages[j] == 1
    assert st.bytes[0] == inst.dnn.input_bytes and st.bytes[-1] == 0  # sink is the device
    assert st.tail_s[0] > 0 and st.tail_s[-1] == 0  # the result comes back unless local


def test_pins_memory_and_servers():
    st = stages_from_instance(chain())
    assert (st.device, st.server, st.min_stop, st.max_stop) == ("phone", "edge", 1, 12)
    mem = stages_from_instance(
        splitplan.load_instance(ROOT / "instances" / "memory-multisplit.json")
    )
    assert mem.max_placed == 5 and mem.bytes[-1] > 0  # the sink is another node
    assert mem.problem().last_stage() == 5  # the device computes only the layers it holds
    with pytest.raises(OnlineError, match="unknown server 'mars'"):
        stages_from_instance(chain(), "mars")
    with pytest.raises(OnlineError, match="no direct link"):
        stages_from_instance(chain(), "cloud")
    with pytest.raises(OnlineError, match="nothing to minimise"):
        st.problem(0.0, 0.0)
    with pytest.raises(OnlineError, match=">= 0"):
        st.problem(1.0, -1.0)
    pinned = chain().with_constraints(splitplan.Constraints({"layer3.0": ("edge",)}))
    assert stages_from_instance(pinned).max_stop == 6


def test_planner_cut_is_the_best_static_cut_at_the_mean_rate():
    inst = chain()
    st = stages_from_instance(inst)
    cut, note = planner_cut(inst, st, st.link_bytes_per_s, 1.0, 0.0)
    costs = static_costs(st.problem(), ConstantChannel(st.link_bytes_per_s).model(st.local_s))
    assert cut == int(np.argmin(costs)) == 2
    assert "prefix" in note  # the planner brings the last layer back to the phone


# --------------------------------------------------------------------------- theory


def random_problem(rng, L, min_stop=0):
    return StopProblem(
        c=rng.uniform(0.0, 1.0, L),
        a=rng.uniform(0.0, 3.0, L + 1),
        b=rng.uniform(0.0, 4.0, L + 1),
        step_s=np.ones(L),
        min_stop=min_stop,
    )


def random_model(rng, K, steps, iid=False):
    rates = np.sort(rng.uniform(0.2, 3.0, K))
    p0 = rng.dirichlet(np.ones(K))
    if iid:
        P = np.broadcast_to(p0, (steps, K, K)).copy()
    else:
        P = rng.dirichlet(np.ones(K) * 0.7, size=(steps, K))
    edges = np.sqrt(rates[:-1] * rates[1:])
    return MarkovModel(rates, p0, P, edges, float(p0 @ rates))


def brute_force(problem, model, N):
    """The least expected cost over every deterministic Markov policy (a stop/continue bit for
    each stage < N and state), each costed by enumerating every channel path."""
    K = model.levels
    S = problem.a[: N + 1, None] + problem.b[: N + 1, None] / model.rates[None, :]
    cum = problem.cum_c
    paths = []
    for path in itertools.product(range(K), repeat=N + 1):
        prob = model.p0[path[0]]
        for i in range(N):
            prob *= model.step(i)[path[i], path[i + 1]]
        paths.append((prob, path))
    free = [(i, s) for i in range(problem.min_stop, N) for s in range(K)]
    best, best_table = np.inf, None
    for bits in itertools.product((False, True), repeat=len(free)):
        table = np.zeros((N + 1, K), dtype=bool)
        table[N] = True
        for (i, s), bit in zip(free, bits, strict=True):
            table[i, s] = bit
        total = 0.0
        for prob, path in paths:
            i = next(i for i in range(N + 1) if table[i, path[i]])
            total += prob * (cum[i] + S[i, path[i]])
        if total < best:
            best, best_table = total, table
    return best, best_table


@pytest.mark.parametrize("seed", range(6))
def test_backward_induction_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    N, K = (3, 2) if seed % 2 else (2, 3)
    problem = random_problem(rng, N + 1, min_stop=int(seed == 4))
    model = random_model(rng, K, N + 1)
    rule = backward_induction(problem, model, N)
    best, table = brute_force(problem, model, N)
    assert rule.value == pytest.approx(best, rel=1e-12)
    assert evaluate_rule(problem, model, rule.stop)[0] == pytest.approx(best, rel=1e-12)
    assert evaluate_rule(problem, model, table)[0] == pytest.approx(best, rel=1e-12)


def test_backward_induction_equals_brute_force_on_a_discretised_rayleigh_channel():
    st = stages_from_instance(chain())
    problem = st.problem(1.0, 0.2)
    N = 4  # cuts 1..4: the pinned first layer makes stage 0 forbidden
    for coherence in (0.0, 0.6):
        channel = RayleighChannel(5.0, 30e6, levels=3, coherence=coherence)
        model = channel.model(problem.step_s)
        rule = backward_induction(problem, model, N)
        best, _ = brute_force(problem, model, N)
        assert rule.value == pytest.approx(best, rel=1e-12)
        assert look_ahead(problem, model, N).value >= best - 1e-12


def test_look_ahead_is_optimal_when_the_problem_is_monotone():
    """A channel that stays put within an inference (P = I) and a convex cost-to-stop sequence
    F_i(r) = cum_c[i] + a[i] + b[i]/r: once stopping beats one more layer it always will, so the
    look-ahead rule is backward induction (Chow-Robbins-Siegmund)."""
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(40):
        L, K = 8, 5
        c = np.full(L, rng.uniform(0.05, 0.3))
        # d_i decreasing and convex (geometric), edge cost decreasing linearly: F convex in i.
        b = 4.0 * rng.uniform(0.3, 0.8) ** np.arange(L + 1)
        a = rng.uniform(0.0, 0.2) * np.arange(L, -1, -1)
        problem = StopProblem(c, a, b, np.ones(L))
        rates = np.sort(rng.uniform(0.2, 5.0, K))
        p0 = rng.dirichlet(np.ones(K))
        model = MarkovModel(rates, p0, np.eye(K), np.sqrt(rates[:-1] * rates[1:]), 1.0)
        assert is_monotone(problem, model)
        bi, ola = backward_induction(problem, model), look_ahead(problem, model)
        assert np.array_equal(bi.stop, ola.stop)
        assert ola.value == pytest.approx(bi.value, rel=1e-12)
        found += bool(bi.stop[:-1].any())  # the rule stops early somewhere: not trivial
    assert found >= 20


def test_look_ahead_never_beats_backward_induction():
    rng = np.random.default_rng(11)
    strict, monotone = 0, 0
    for trial in range(300):
        L, K = int(rng.integers(2, 7)), int(rng.integers(1, 5))
        problem = random_problem(rng, L, min_stop=int(rng.integers(0, 2)))
        model = random_model(rng, K, L, iid=trial % 3 == 0)
        bi, ola = backward_induction(problem, model), look_ahead(problem, model)
        assert ola.value >= bi.value - 1e-12 * max(1.0, bi.value)
        if is_monotone(problem, model):
            monotone += 1
            assert ola.value == pytest.approx(bi.value, rel=1e-12)
            assert np.array_equal(bi.stop, ola.stop)
        strict += ola.value > bi.value * (1 + 1e-9)
    assert strict >= 30 and monotone >= 30  # both cases really occur


def test_look_ahead_closed_form_thresholds_equal_its_table():
    st = stages_from_instance(chain())
    problem = st.problem(1.0, 0.5)
    for coherence in (0.0, 0.7, 1.0):
        channel = RayleighChannel(8.0, 40e6, levels=12, coherence=coherence)
        model = channel.model(problem.step_s)
        table = look_ahead(problem, model).stop
        rule = look_ahead_thresholds(problem, model)
        r = model.rates[None, :]
        assert np.array_equal(table, (r >= rule.lo[:, None]) & (r <= rule.hi[:, None]))
        for i in range(len(table)):
            for s, rate in enumerate(model.rates):
                assert rule.decide(i, rate) == table[i, s]
        # SNR form of a rate threshold
        finite = (rule.lo > 0) & (rule.lo < 100 * channel.mean_rate)
        snr = channel.snr_of_rate(rule.lo[finite])
        assert np.allclose(channel.rate_of_snr(snr), np.maximum(rule.lo[finite], channel.floor))
    # The closed-form rule runs on the continuous rate in the simulator (no model expectation).
    (res,) = simulate(problem, channel, [rule], n=5000, seed=0, oracle=False)
    assert res.analytic is None and 0 <= res.mean_stop <= rule.horizon
    # A two-state Gilbert-Elliott chain is of that form too, with rho = 1 - p_gb - p_bg ...
    ge = GilbertElliottChannel(10e6, 1e6, 0.1, 0.3).model(problem.step_s)
    rule = look_ahead_thresholds(problem, ge)
    table = look_ahead(problem, ge).stop
    r = ge.rates[None, :]
    assert np.array_equal(table, (r >= rule.lo[:, None]) & (r <= rule.hi[:, None]))
    # ... but a general chain is not.
    P = np.array([[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6]])
    three = MarkovChannel(np.array([1e6, 5e6, 2e7]), np.array([0.2, 0.5, 0.3]), P)
    with pytest.raises(OnlineError, match="closed-form thresholds"):
        look_ahead_thresholds(problem, three.model(problem.step_s))


def test_decisions_match_the_table_on_observed_rates():
    st = stages_from_instance(chain())
    problem = st.problem()
    channel = RayleighChannel(10.0, 30e6, levels=16)
    rule = backward_induction(problem, channel.model(problem.step_s))
    rates, states = channel.sample(problem.step_s, 2000, np.random.default_rng(0))
    for n in range(0, 2000, 7):
        for i in range(rule.horizon + 1):
            assert rule.decide(i, rates[n, i]) == rule.stop[i, states[n, i]]


# --------------------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize(
    "channel",
    [
        RayleighChannel(3.0, 40e6, levels=16, coherence=0.5),
        GilbertElliottChannel(12.5e6, 1.25e6, 0.1, 0.3),
        MarkovChannel(
            np.array([1e6, 5e6, 2e7]),
            np.array([0.2, 0.5, 0.3]),
            np.array([[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6]]),
        ),
    ],
    ids=["rayleigh", "gilbert-elliott", "markov"],
)
def test_monte_carlo_means_match_the_analytic_expectations(channel):
    st = stages_from_instance(chain())
    comp = compare(st.problem(1.0, 0.2), channel, n=60_000, seed=3)
    opt = comp.result("optimal")
    for r in comp.results:
        if r.analytic is None:
            continue
        se = r.ci95 / 1.96
        assert abs(r.mean - r.analytic) <= 4 * se + 1e-12 * r.analytic, r.policy
        assert r.analytic >= opt.analytic - 1e-12  # nothing beats the optimal rule in expectation
    assert comp.result("oracle").mean <= min(r.mean for r in comp.results[:-1])
    assert 0 < comp.result("optimal").ci95 < 0.02 * opt.mean


def test_rayleigh_levels_are_exact_in_expectation():
    ch = RayleighChannel(0.0, 20e6, levels=8)
    rates, states = ch.sample(np.zeros(0), 400_000, np.random.default_rng(1))
    inv = np.bincount(states[:, 0], 1 / rates[:, 0], 8) / np.bincount(states[:, 0], minlength=8)
    assert np.allclose(inv * ch.model(np.zeros(0)).rates, 1.0, rtol=0.01)
    assert rates.mean() == pytest.approx(ch.mean_rate, rel=0.01)
    assert np.all(np.diff(ch.model(np.zeros(0)).rates) > 0)
    with pytest.raises(OnlineError, match="bandwidth"):
        RayleighChannel(10.0, -1.0)
    assert bandwidth_for_rate(12.5e6, 10.0) == pytest.approx(8 * 12.5e6 / np.log2(11))


# --------------------------------------------------------------------------- placement


def mlp(L, width, inp=784, classes=10, dev_flops=2e9, bw=2e6):
    net = Network(
        (Node("dev", dev_flops, compute_power_w=3.0, tx_power_w=1.0), Node("srv", 1e11)),
        (Link("dev", "srv", bw, 0.005),),
        "dev",
        "dev",
    )
    return Instance(mlp_dnn(L, width, inp, classes), net, name="mlp")


def test_mlp_closed_form_placement_matches_the_numeric_scan():
    rng = np.random.default_rng(5)
    interior = 0
    for _ in range(40):
        L = int(rng.integers(2, 14))
        inst = mlp(
            L,
            int(rng.choice([256, 512, 1024])),
            dev_flops=10 ** rng.uniform(8.5, 10.5),
            bw=10 ** rng.uniform(5, 7),
        )
        st = stages_from_instance(inst)
        lam = float(rng.choice([0.0, 0.5, 2.0]))
        problem = st.problem(1.0, lam)
        channel = RayleighChannel(
            float(rng.uniform(-5, 25)), 1e6 * rng.uniform(1, 20), levels=int(rng.integers(2, 20))
        )
        model = channel.model(problem.step_s)
        M = float(10 ** rng.uniform(0, 5))
        kappa = st.download_cost_per_byte(1.0, lam, channel.mean_rate)
        closed = mlp_closed_form(problem, model, st.param_bytes, M, kappa)
        scan = place(problem, model, st.param_bytes, M, kappa, policy="look-ahead")
        assert np.allclose(closed.total, scan.total, rtol=1e-10, atol=0)
        assert closed.layers == scan.layers
        interior += 0 < closed.layers < L
        best = place(problem, model, st.param_bytes, M, kappa, policy="optimal")
        assert best.total.min() <= scan.total.min() * (1 + 1e-12)
        assert np.all(np.diff(best.online) <= 1e-12)  # more placed layers never hurt online
    assert interior >= 5


def test_mlp_closed_form_refuses_other_models():
    st = stages_from_instance(chain())
    problem = st.problem()
    model = RayleighChannel(10.0, 30e6).model(problem.step_s)
    with pytest.raises(OnlineError, match=r"pins|equal-width"):
        mlp_closed_form(problem, model, st.param_bytes, 100.0, 1e-7)
    inst = mlp(6, 512)
    st = stages_from_instance(inst)
    problem = st.problem()
    correlated = RayleighChannel(10.0, 1e6, coherence=0.5).model(problem.step_s)
    with pytest.raises(OnlineError, match=r"i\.i\.d\."):
        mlp_closed_form(problem, correlated, st.param_bytes, 100.0, 1e-7)


def test_placement_trades_download_against_online_cost():
    st = stages_from_instance(chain())
    problem = st.problem()
    model = RayleighChannel(10.0, 30e6).model(problem.step_s)
    kappa = st.download_cost_per_byte(1.0, 0.0, 12.5e6)
    never = place(problem, model, st.param_bytes, 1e15, kappa)
    assert never.layers == int(np.argmin(never.online))
    often = place(problem, model, st.param_bytes, 1e-3, kappa)
    # Downloads dominate: place nothing beyond the pinned first layer's parameters (the
    # parameter-free maxpool after it comes for free and helps online).
    params = np.cumsum(st.param_bytes)
    assert often.layers == 2 and params[1] == params[0] < params[2]
    assert np.isinf(often.total[0])
    with pytest.raises(OnlineError, match="between updates"):
        place(problem, model, st.param_bytes, 0.0, kappa)


# --------------------------------------------------------------------------- traces


def test_shipped_traces_load():
    for name in SHIPPED_TRACES:
        tr = load_trace(name)
        assert len(tr.times_s) >= 40 and tr.times_s[0] == 0 and np.all(np.diff(tr.times_s) > 0)
        assert 0.1e6 < tr.mean_rate * 8 < 2e9, name
    assert len(load_trace("5g-walking-4g").times_s) == 315
    assert len(load_trace("5g-walking-5g").times_s) == 288
    tr = load_trace("hsdpa-bus")
    assert (
        tr.rate_at(np.array([0.0, 0.5, 1.01, tr.duration_s + 0.5]))[[0, 1, 3]].tolist()
        == [tr.rates[0]] * 3
    )


def test_trace_errors_name_the_problem(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1.0\n1 x\n")
    with pytest.raises(TraceError, match="line 2"):
        load_trace(bad)
    back = tmp_path / "back.txt"
    back.write_text("0 1.0\n2 1.0\n1 1.0\n")
    with pytest.raises(TraceError, match="times must increase"):
        load_trace(back)
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(TraceError, match="throughput_mbps"):
        load_trace(csv)
    ok = tmp_path / "ok.txt"
    ok.write_text("0 1\n1 0\n2 3\n")
    assert load_trace(ok).mbps.tolist() == [1.0, 0.0, 3.0]


def test_trace_channel_fits_its_model_on_the_trace():
    st = stages_from_instance(chain())
    problem = st.problem()
    channel = TraceChannel(load_trace("5g-walking"), levels=8)
    model = channel.model(problem.step_s)
    assert model.levels == 8 and len(model.P) == st.layers
    assert np.allclose(model.P.sum(axis=2), 1.0)
    assert np.allclose(model.p0, 1 / 8, atol=0.03)  # quantile levels
    rates, states = channel.sample(problem.step_s, 20_000, np.random.default_rng(0))
    assert rates.min() >= channel.floor > 0
    assert np.array_equal(states, model.state_of(rates))
    comp = compare(problem, channel, n=20_000, seed=0)
    # On the real trace the model's prediction is close but not exact (model mismatch).
    opt = comp.result("optimal")
    assert abs(opt.mean - opt.analytic) < 0.05 * opt.analytic
    assert comp.result("oracle").mean <= opt.mean <= comp.result("best-static").mean


def test_cost_vs_snr_plot(tmp_path):
    pytest.importorskip("matplotlib")
    problem = stages_from_instance(chain()).problem()
    data = cost_vs_snr(problem, [0.0, 10.0, 20.0], 30e6, levels=8, n=2000)
    assert set(data) >= {"optimal", "look-ahead", "best-static", "oracle"}
    assert all(len(row["mean"]) == 3 for row in data.values())
    opt = data["optimal"]["analytic"]
    assert opt[0] > opt[1] > opt[2]  # a better channel costs less
    out = tmp_path / "snr.png"
    plot_cost_vs_snr(data, str(out), "test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_quick_mode_runs():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "online.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| latency | trace 5g-walking |" in proc.stdout
    assert "us/call" in proc.stdout and "| mlp-3072-1024x7-10 | 1000 |" in proc.stdout


# --------------------------------------------------------------------------- study (the library)


def _cli_json(capsys, *argv):
    import json

    from splitplan.cli import main

    code = main(["online", str(ROOT / "instances" / "three-tier-chain.json"), *argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return _timeless(json.loads(out.out))


def _timeless(d):
    """`d` without the policies' wall times (they differ from run to run), through JSON."""
    import json

    d = json.loads(json.dumps(d))
    for p in d["policies"]:
        del p["wall_s"]
    return d


def test_study_to_dict_is_what_online_json_prints(capsys):
    from splitplan.online import study

    inst = chain()
    lines: list[str] = []
    result = study(inst, inferences=2000, seed=4, progress=lines.append)
    assert lines == [f"simulating 2000 inferences on {inst.name} ..."]
    printed = _cli_json(capsys, "--inferences", "2000", "--seed", "4")
    assert printed == _timeless({"status": "ok", **result.to_dict()})
    assert any(p["policy"] == "planner" for p in printed["policies"])
    # placement, with the channel as an object and the download at the channel's mean rate
    channel = GilbertElliottChannel(100e6 / 8, 5e6 / 8, 0.1, 0.3)
    placed = study(inst, channel, inferences=2000, planner=False, placement=True)
    argv = ["--inferences", "2000", "--no-planner", "--placement", "--channel", "gilbert-elliott"]
    printed = _cli_json(capsys, *argv, "--ge-rates-mbps", "100,5")
    assert printed == _timeless({"status": "ok", **placed.to_dict()})
    assert placed.placement["downlink_bytes_per_s"] == pytest.approx(channel.mean_rate)


def test_study_sweeps_the_mean_snr_of_its_rayleigh_channel():
    from splitplan.online import study

    inst = chain()
    channel = RayleighChannel(10.0, 20e6, levels=8)
    result = study(inst, channel, inferences=1000, planner=False, snr_sweep_db=[0.0, 10.0])
    optimal = result.sweep["optimal"]
    assert optimal["snr_db"] == [0.0, 10.0] and result.plot is None
    # the sweep's point at the channel's own SNR is the study's own simulation (same draws)
    assert optimal["mean"][1] == pytest.approx(result.comparison.result("optimal").mean)
    assert optimal["mean"][0] > optimal["mean"][1]  # a worse channel costs more
    assert "sweep" not in result.to_dict()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"server": "mars"}, "mars"),
        ({"inferences": 1}, "inferences"),
        ({"lam": -1.0}, "lam"),
        ({"plot": "x.png"}, "snr_sweep_db"),
        ({"snr_sweep_db": [0.0], "channel": GilbertElliottChannel(1e6, 1e5, 0.1, 0.3)}, "Rayleigh"),
        ({"horizon": 0, "planner": False}, "horizon"),
    ],
)
def test_study_names_what_is_wrong(kwargs, message):
    from splitplan.online import study

    with pytest.raises(OnlineError, match=message):
        study(chain(), inferences=kwargs.pop("inferences", 100), **kwargs)
