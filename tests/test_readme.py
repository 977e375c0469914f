"""The README's library example runs as written (docs match the code)."""

import functools
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(capsys, monkeypatch):
    """Every python block of the README runs as written; the slimmable example trains for one
    epoch each (the API is what is checked here; tests/test_slimmable.py checks what training
    reaches)."""
    from splitplan import slimmable

    monkeypatch.setattr(slimmable, "train_base", functools.partial(slimmable.train_base, 1))
    monkeypatch.setattr(
        slimmable, "train_slimmable", functools.partial(slimmable.train_slimmable, epochs=1)
    )
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert "splits" in capsys.readouterr().out
