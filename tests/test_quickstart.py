"""The README quickstart from a fresh clone: the Makefile's demo and test steps, and the command-line help."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archi3d.cli import app

ROOT = Path(__file__).resolve().parents[1]
PLAIN_ENV = {"TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "100"}
ANSI_ESCAPE = "\x1b"
BOX_DRAWING = re.compile("[\u2500-\u259f]")
# Runs the `archi3d` entry point (archi3d.cli:main) as the console script would, with the clone's source on
# PYTHONPATH; first reports where archi3d was imported from.
ENTRY_POINT = (
    "import sys; sys.argv = ['archi3d', *sys.argv[1:]]; import archi3d; "
    "sys.stderr.write('archi3d imported from ' + archi3d.__file__ + chr(10)); "
    "from archi3d.cli import main; main()"
)
DEMO_WORKSPACE = "demo-workspace"

CONSOLIDATE_OPTIONS = {
    "--run-id",
    "--dry-run",
    "--strict",
    "--only-status",
    "--fix-status",
    "--no-fix-status",
    "--max-rows",
    "--heartbeat-timeout",
    "--stale-policy",
    "--json",
    "--workspace",
    "--lock-timeout",
    "--workers",
    "--verify-hashes",
    "--report",
}
OPTIONS_OF = {
    "consolidate": CONSOLIDATE_OPTIONS,
    "explain": {"--run-id", "--workspace", "--heartbeat-timeout", "--stale-policy", "--verify-hashes", "--json"},
    "revert": {"--workspace", "--lock-timeout", "--json"},
    "validate": {"--workspace", "--run-id", "--format"},
    "demo": {"--workspace", "--jobs", "--seed"},
}
OPTION_LINE = re.compile(r"^  (?:-\w, )?(--[\w-]+)(?: / (--[\w-]+))?")


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would steer make or archi3d elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in {"VENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env.pop("ARCHI3D_WORKSPACE", None)
    env.update(PLAIN_ENV)
    env.update(extra)
    return env


def assert_plain(text: str) -> None:
    assert ANSI_ESCAPE not in text, "ANSI escape code in the output"
    assert BOX_DRAWING.search(text) is None, "box-drawing characters in the output"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not available")
    top = run([git, "rev-parse", "--show-toplevel"], cwd=ROOT)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not the root of a git repository")
    target = tmp_path_factory.mktemp("quickstart") / "archi3d"
    cloned = run([git, "clone", "--quiet", str(ROOT), str(target)], cwd=target.parent)
    assert cloned.returncode == 0, cloned.stderr
    return target


def make_dry_run(clone: Path, target: str) -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not available")
    result = run([make, "-n", target], cwd=clone, env=clean_env())
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def index_of(lines: list[str], pattern: str) -> int:
    """Index of the first line matching `pattern`; fails naming the pattern when none does."""
    for index, line in enumerate(lines):
        if re.search(pattern, line):
            return index
    raise AssertionError(f"no step matches {pattern!r} in:\n" + "\n".join(lines))


VENV_STEP = r"python3 -m venv \.venv$"
LOCK_STEP = r"^\.venv/bin/python -m pip install --quiet --require-hashes -r requirements\.lock$"
INSTALL_STEP = r"^\.venv/bin/python -m pip install --quiet --no-deps -e \.$"


# ----------------------------------------------------------------------------- README and Makefile


def test_the_readme_quickstart_is_make_demo_and_make_test(clone: Path) -> None:
    readme = (clone / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quickstart, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]


def test_the_makefile_has_demo_and_test_targets(clone: Path) -> None:
    makefile = (clone / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+):", makefile, flags=re.MULTILINE))
    assert {"demo", "test"} <= targets
    phony = re.search(r"^\.PHONY:(.*)$", makefile, flags=re.MULTILINE)
    assert phony is not None and {"demo", "test"} <= set(phony.group(1).split())


def test_make_demo_creates_the_venv_installs_then_builds_and_consolidates(clone: Path) -> None:
    steps = make_dry_run(clone, "demo")
    order = [
        index_of(steps, VENV_STEP),
        index_of(steps, LOCK_STEP),
        index_of(steps, INSTALL_STEP),
        index_of(steps, rf"^rm -rf {DEMO_WORKSPACE}$"),
        index_of(steps, rf"^\.venv/bin/archi3d demo --workspace {DEMO_WORKSPACE}$"),
        index_of(steps, rf"^\.venv/bin/archi3d consolidate --workspace {DEMO_WORKSPACE} --run-id demo-run$"),
    ]
    assert order == sorted(order), steps


def test_make_test_creates_the_venv_installs_then_runs_ruff_mypy_and_pytest(clone: Path) -> None:
    steps = make_dry_run(clone, "test")
    order = [
        index_of(steps, VENV_STEP),
        index_of(steps, LOCK_STEP),
        index_of(steps, INSTALL_STEP),
        index_of(steps, r"^\.venv/bin/ruff check \.$"),
        index_of(steps, r"^\.venv/bin/ruff format --check \.$"),
        index_of(steps, r"^\.venv/bin/python -m mypy"),
        index_of(steps, r"^\.venv/bin/python -m pytest .*--cov=archi3d"),
    ]
    assert order == sorted(order), steps


def test_mypy_as_make_test_runs_it_is_strict_on_src_tests_and_bench(clone: Path) -> None:
    # `make test` runs plain `python -m mypy`: what it checks comes from mypy.ini.
    config = configparser.ConfigParser()
    assert config.read(clone / "mypy.ini")
    assert config.getboolean("mypy", "strict")
    files = {name.strip() for name in config.get("mypy", "files").split(",")}
    assert {"src", "tests", "bench"} <= files


# ----------------------------------------------------------------------------- the demo's steps


def test_the_demo_steps_run_from_a_fresh_clone(clone: Path) -> None:
    env = clean_env(PYTHONPATH=str(clone / "src"))
    workspace = clone / DEMO_WORKSPACE
    assert not workspace.exists()

    demo = run([sys.executable, "-c", ENTRY_POINT, "demo", "--workspace", DEMO_WORKSPACE], cwd=clone, env=env)
    assert demo.returncode == 0, demo.stderr
    assert f"archi3d imported from {clone / 'src' / 'archi3d' / '__init__.py'}" in demo.stderr
    assert demo.stdout.splitlines() == [
        f"demo workspace written to {DEMO_WORKSPACE}",
        "  run demo-run: 200 jobs (and run demo-run-2 that must stay untouched)",
        f"  consolidate it with: archi3d consolidate --workspace {DEMO_WORKSPACE} --run-id demo-run",
    ]

    args = ["consolidate", "--workspace", DEMO_WORKSPACE, "--run-id", "demo-run"]
    consolidate = run([sys.executable, "-c", ENTRY_POINT, *args], cwd=clone, env=env)
    assert consolidate.returncode == 0, consolidate.stderr
    summary = consolidate.stdout
    assert_plain(summary + consolidate.stderr)
    assert summary.startswith("consolidate run demo-run: written\n  considered ")
    assert "\n  status after:  completed " in summary

    table = workspace / "tables" / "generations.csv"
    log = workspace / "logs" / "metrics.log"
    assert table.is_file() and log.is_file()
    stamp, _, payload = log.read_text(encoding="utf-8").splitlines()[-1].partition(" ")
    record = json.loads(payload)
    assert stamp and (record["event"], record["run_id"], record["written"]) == ("consolidate", "demo-run", True)
    assert f"considered {record['considered']} (" in summary and f"inserted {record['upsert_inserted']}," in summary

    # Every path the README and `make demo` point the user to exists now.
    readme = (clone / "README.md").read_text(encoding="utf-8")
    makefile = (clone / "Makefile").read_text(encoding="utf-8")
    shown = re.findall(r"^\t@echo \"\w+: +(\S+)\"$", makefile, flags=re.MULTILINE)
    named = re.findall(rf"`({DEMO_WORKSPACE}/[^`]+)`", readme)
    assert shown and named
    for relative in {*shown, *named}:
        assert (clone / relative).exists(), relative

    # The demo workspace does not dirty the checkout.
    status = run(["git", "status", "--porcelain"], cwd=clone)
    assert status.returncode == 0 and status.stdout == "", status.stdout


# ----------------------------------------------------------------------------- --help


def help_text(*args: str) -> str:
    # color=True: the runner strips nothing, so any escape code the command writes is seen.
    result = CliRunner().invoke(app, [*args, "--help"], env=PLAIN_ENV, color=True, prog_name="archi3d")
    assert result.exit_code == 0, result.output
    assert_plain(result.output)
    return result.output


def options_listed(text: str) -> set[str]:
    section = text.split("\nOptions:\n", 1)[1]
    found: set[str] = set()
    for line in section.splitlines():
        match = OPTION_LINE.match(line)
        if match:
            found.update(name for name in match.groups() if name)
    return found


def test_top_level_help_lists_every_command() -> None:
    text = help_text()
    assert text.startswith("Usage: archi3d ")
    commands = re.findall(r"^  (\w+)  ", text.split("\nCommands:\n", 1)[1], flags=re.MULTILINE)
    assert commands == ["consolidate", "explain", "revert", "validate", "demo"]


@pytest.mark.parametrize("command", sorted(OPTIONS_OF))
def test_subcommand_help_lists_exactly_the_spec_options(command: str) -> None:
    text = help_text(command)
    assert text.startswith(f"Usage: archi3d {command} [OPTIONS]")
    assert options_listed(text) == OPTIONS_OF[command] | {"--help"}


def test_consolidate_help_pairs_fix_status_with_no_fix_status() -> None:
    assert "--fix-status / --no-fix-status" in help_text("consolidate")


def test_the_entry_point_prints_help_from_the_clone(clone: Path) -> None:
    result = run([sys.executable, "-c", ENTRY_POINT, "--help"], cwd=clone, env=clean_env(PYTHONPATH=str(clone / "src")))
    assert result.returncode == 0, result.stderr
    assert f"archi3d imported from {clone / 'src' / 'archi3d' / '__init__.py'}" in result.stderr
    assert result.stdout.startswith("Usage: archi3d ")
    assert_plain(result.stdout)
