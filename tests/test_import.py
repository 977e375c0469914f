"""`import splitplan` stays light: no torch, and the solver stack loads on first solve."""

import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, splitplan, splitplan.cli, splitplan.baselines; "
        "print(sorted(m for m in ('torch', 'pyomo', 'highspy', 'ortools') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
