"""Run-time width adaptation of a slimmable encoder (issue 7) on bandwidth traces."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitplan.online import OnlineError, Width, adapt_on_trace, load_trace, pick
from splitplan.online import predicted_latency_s as latency

widths_st = st.lists(
    st.builds(
        Width,
        name=st.text("abc", min_size=1, max_size=3),
        payload_bytes=st.floats(0, 1e6),
        device_s=st.floats(0, 0.01),
        server_s=st.floats(0, 0.01),
        accuracy=st.floats(0, 100),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(widths_st, st.floats(1e2, 1e9), st.floats(1e-4, 0.1), st.floats(0, 0.01))
def test_pick_never_misses_when_another_width_would_meet(widths, rate, deadline, base):
    k = int(pick(widths, rate, deadline, base))
    lat = latency(widths, rate, base)
    meets = lat <= deadline
    if meets.any():
        # it meets the deadline, and no width that meets it is more accurate
        assert meets[k]
        assert widths[k].accuracy >= max(
            w.accuracy for w, m in zip(widths, meets, strict=True) if m
        )
    else:
        assert lat[k] == lat.min()  # nothing meets it: the fastest


WIDTHS = [
    Width("1/8", 128, 6e-5, 6e-5, 93.6),
    Width("1/4", 256, 6e-5, 6e-5, 95.8),
    Width("1/2", 512, 7e-5, 7e-5, 98.9),
    Width("1", 1024, 8e-5, 7e-5, 98.9),
]


def test_pick_prefers_the_smaller_payload_among_equally_accurate_widths():
    assert WIDTHS[int(pick(WIDTHS, 1e9, 1.0))].name == "1/2"
    slow = 256 / 0.004  # bytes/s at which 1/4 just meets a 4 ms deadline
    assert WIDTHS[int(pick(WIDTHS, slow * 1.01, 0.0043))].name == "1/4"


def test_adaptation_on_a_real_trace():
    trace = load_trace("hsdpa-bus")
    results = {r.policy: r for r in adapt_on_trace(WIDTHS, trace, 0.004, predictor="oracle")}
    oracle = results["adaptive (oracle)"]
    # knowing the rate, it misses only frames that no width could meet
    times = np.arange(0.1, trace.duration_s, 0.1)
    best = latency(WIDTHS, trace.rate_at(times)).min(axis=1)
    assert oracle.miss_rate == pytest.approx(np.mean(best > 0.004))
    for w in WIDTHS:
        fixed = results[f"fixed {w.name}"]
        assert oracle.miss_rate <= fixed.miss_rate
        assert fixed.mean_accuracy == pytest.approx(w.accuracy)
    last = adapt_on_trace(WIDTHS, trace, 0.004)[0]
    assert last.policy == "adaptive (last)" and last.miss_rate >= oracle.miss_rate
    assert 93.6 <= last.mean_accuracy <= 98.9


def test_bad_input_is_clear():
    trace = load_trace("hsdpa-bus")
    with pytest.raises(OnlineError, match="deadline"):
        adapt_on_trace(WIDTHS, trace, 0)
    with pytest.raises(OnlineError, match="unknown predictor"):
        adapt_on_trace(WIDTHS, trace, 0.01, predictor="psychic")
    with pytest.raises(OnlineError, match="no widths"):
        pick([], 1e6, 0.01)
