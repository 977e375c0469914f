"""The benchmark harnesses run (timings are reported by them, never asserted here)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_benchmark_quick_mode_runs():
    out = run_benchmark("run.py")
    assert "| chain 30x3 chain | latency | highs |" in out
    assert "optimal" in out


def test_deadline_quick_mode_runs():
    assert "| chain 30x4 hetero | highs | 1 |" in run_benchmark("deadline.py")


def test_compare_quick_mode_runs():
    assert "| chain 20x2 | 0.0 % (" in run_benchmark("compare.py", "--time-limit", "0.1")


def test_nas_nb201_quick_mode_runs():
    out = run_benchmark("nas_nb201.py")
    assert "| seed | HV @ 20 | HV @ 40 |" in out
    assert "NASC comparison" in out


def test_slimmable_quick_mode_runs():
    assert "| width |" in run_benchmark("slimmable_digits.py")


def test_slimmable_adapt_quick_mode_runs():
    assert "| hsdpa-bus | 2 | adaptive (last) |" in run_benchmark("slimmable_adapt.py")


def test_slimmable_plan_quick_mode_runs():
    out = run_benchmark("slimmable_plan.py")
    assert "| 3g | raw only | all on device |" in out
    assert "| 3g | none |" in out
