"""The command registry of `splitplan.cli`: one table, one dispatch, traits as attributes, and
wing commands that cost nothing until they run."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import splitplan
from splitplan import cli
from splitplan.cli import COMMANDS, Command, WingCommand, main
from splitplan.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
CHAIN = str(ROOT / "instances" / "three-tier-chain.json")
HEAVY = (
    "torch",
    "optuna",
    "pyomo",
    "highspy",
    "ortools",
    "splitplan.online",
    "splitplan.nas",
    "splitplan.runtime",
    "splitplan.profile",
    "splitplan.solvers",
)


def _imported_after(code: str) -> list[str]:
    loaded = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
    probe = f"import sys\n{code}\nprint(json.dumps({loaded}))"
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_lists_every_registered_command_and_imports_no_wing():
    code = (
        "from splitplan.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert _imported_after(code) == []
    out = subprocess.run(
        [sys.executable, "-m", "splitplan.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    listed = [ln.split()[0] for ln in out.splitlines() if ln.startswith("    ")]
    assert listed == list(COMMANDS)  # the registry's order
    for command in COMMANDS.values():
        assert f"{command.name}  " in out and command.help in out


def test_a_core_command_never_imports_a_wing():
    assert _imported_after(f"from splitplan.cli import main\nmain(['validate', {CHAIN!r}])") == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_declares_its_arguments_and_traits(name, capsys):
    command = COMMANDS[name]
    assert command.name == name and command.help
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith(f"usage: splitplan {name} ")
    if command.loads_instance:  # the dispatch reads args.file before the action
        assert " FILE" in usage or " INSTANCE" in usage
    assert isinstance(command.interrupted, str) and command.interrupted.startswith("splitplan:")


def test_wing_commands_name_their_module_and_functions():
    import importlib

    wings = [c for c in COMMANDS.values() if isinstance(c, WingCommand)]
    assert {c.name for c in wings} == {"online", "adapt", "nas", "retrain", "export", "run"}
    for c in wings:
        module = importlib.import_module(c.module)
        assert callable(getattr(module, c.arguments)) and callable(getattr(module, c.action))


class _Probe(Command):
    """A command for the dispatch tests: records what it got, then does `then`."""

    name = "probe"
    help = "a test command"

    def __init__(self, then=None, **traits):
        self.then, self.got = then, []
        for key, value in traits.items():
            setattr(self, key, value)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", nargs="?")
        parser.add_argument("--json", action="store_true")

    def take_action(self, args, inst):
        self.got.append((args, inst))
        if self.then is not None:
            return self.then()
        return 0


def _register(monkeypatch, command: Command) -> None:
    monkeypatch.setitem(COMMANDS, command.name, command)


def test_loads_instance_hands_the_instance_over(monkeypatch):
    probe = _Probe(loads_instance=True)
    _register(monkeypatch, probe)
    assert main(["probe", CHAIN]) == 0
    [(args, inst)] = probe.got
    assert isinstance(inst, splitplan.Instance) and inst == splitplan.load_instance(CHAIN)
    assert args.file == CHAIN and args.started_s > 0


def test_loads_instance_turns_a_bad_file_into_exit_2_with_the_json_error(monkeypatch, capsys):
    probe = _Probe(loads_instance=True)
    _register(monkeypatch, probe)
    assert main(["probe", "/no/such/file.json", "--json"]) == ExitCode.BAD_INPUT
    out = capsys.readouterr()
    assert probe.got == []  # the action never ran
    assert json.loads(out.out)["status"] == "bad_input" and "/no/such/file.json" in out.err


def test_without_loads_instance_nothing_is_read(monkeypatch):
    probe = _Probe()
    _register(monkeypatch, probe)
    assert main(["probe", "/no/such/file.json"]) == 0
    [(_, inst)] = probe.got
    assert inst is None


@pytest.mark.parametrize("message", [Command.interrupted, "splitplan: interrupted (resume me)"])
def test_the_interrupted_trait_is_the_ctrl_c_line(monkeypatch, capsys, message):
    def interrupt():
        raise KeyboardInterrupt

    _register(monkeypatch, _Probe(interrupt, interrupted=message))
    assert main(["probe"]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err.strip() == message


def test_protect_stdout_sends_native_writes_to_stderr(tmp_path):
    """fd-level writes (what a solver's C code does) land on stderr only for commands with the
    trait; Python's print still reaches stdout. In a subprocess: pytest captures fd 1 itself."""
    code = """
import os, sys
from splitplan.cli import COMMANDS, Command, main

class Native(Command):
    name, help = "native", "writes to descriptor 1 as C code would"
    def add_arguments(self, parser):
        pass
    def take_action(self, args, inst):
        os.write(1, b"native\\n")
        print("python")
        return 0

for protect in (False, True):
    command = Native()
    command.name = f"native{int(protect)}"
    command.protect_stdout = protect
    COMMANDS[command.name] = command
sys.exit(main([sys.argv[1]]))
"""
    runs = {
        name: subprocess.run(
            [sys.executable, "-c", code, name], capture_output=True, text=True, cwd=ROOT
        )
        for name in ("native0", "native1")
    }
    assert all(r.returncode == 0 for r in runs.values()), runs
    assert sorted(runs["native0"].stdout.split()) == ["native", "python"]
    assert runs["native1"].stdout.split() == ["python"] and "native" in runs["native1"].stderr


def test_the_registered_traits_of_the_shipped_commands():
    """What the dispatch did with special cases before the registry, kept (issue 15)."""
    loads = {n for n, c in COMMANDS.items() if c.loads_instance}
    protects = {n for n, c in COMMANDS.items() if c.protect_stdout}
    assert loads == {"solve", "compare", "validate", "online"}
    assert protects == {"solve", "compare", "validate", "online", "nas", "retrain"}
    assert "rerun resumes the study" in COMMANDS["nas"].interrupted
    assert COMMANDS["retrain"].interrupted == COMMANDS["nas"].interrupted
    assert cli._parser().prog == "splitplan"
