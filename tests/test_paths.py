"""PathResolver (workspace resolution, pure getters, the mutable tree, relative paths) and validate_id."""

from __future__ import annotations

from pathlib import Path

import pytest

from archi3d.errors import InputError, InvalidIdError
from archi3d.paths import PathResolver, validate_id

ENV = "ARCHI3D_WORKSPACE"


# --- workspace resolution -------------------------------------------------------------------------


def test_explicit_workspace_wins_over_env_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env, cwd = tmp_path / "explicit", tmp_path / "env", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv(ENV, str(env))
    monkeypatch.chdir(cwd)
    assert PathResolver(explicit).workspace == explicit
    assert PathResolver(str(explicit)).workspace == explicit


def test_env_workspace_used_without_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, cwd = tmp_path / "env", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv(ENV, str(env))
    monkeypatch.chdir(cwd)
    assert PathResolver().workspace == env
    assert PathResolver(None).workspace == env


def test_cwd_used_without_explicit_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert PathResolver().workspace.resolve() == tmp_path.resolve()


def test_relative_explicit_workspace_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    resolver = PathResolver("ws")
    assert resolver.workspace.is_absolute()
    assert resolver.workspace.resolve() == (tmp_path / "ws").resolve()


# --- layout -----------------------------------------------------------------------------------------


def test_layout_paths(tmp_path: Path) -> None:
    r = PathResolver(tmp_path)
    assert r.tables_root == tmp_path / "tables"
    assert r.runs_root == tmp_path / "runs"
    assert r.reports_root == tmp_path / "reports"
    assert r.logs_root == tmp_path / "logs"
    assert r.generations_csv_path() == tmp_path / "tables" / "generations.csv"
    assert r.generations_lock_path() == tmp_path / "tables" / "generations.lock"
    assert r.metrics_log_path() == tmp_path / "logs" / "metrics.log"
    assert r.worker_log_path() == tmp_path / "logs" / "worker.log"
    assert r.manifest_path("run-1") == tmp_path / "runs" / "run-1" / "manifest.csv"
    assert r.state_dir("run-1") == tmp_path / "runs" / "run-1" / "state"
    assert r.job_outputs_dir("run-1", "00123") == tmp_path / "runs" / "run-1" / "outputs" / "00123"
    assert r.marker_path("run-1", "job.1", "completed") == tmp_path / "runs" / "run-1" / "state" / "job.1.completed"


def test_getters_create_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    r = PathResolver(workspace)
    _ = (r.tables_root, r.runs_root, r.reports_root, r.logs_root)
    r.generations_csv_path()
    r.generations_lock_path()
    r.metrics_log_path()
    r.worker_log_path()
    r.run_root("r1")
    r.manifest_path("r1")
    r.state_dir("r1")
    r.outputs_dir("r1")
    r.job_outputs_dir("r1", "j1")
    r.marker_path("r1", "j1", "inprogress")
    r.rel_to_workspace(workspace / "tables" / "generations.csv")
    r.resolve_rel("runs/r1/outputs/j1/generated.glb")
    assert not workspace.exists()
    workspace.mkdir()
    r.generations_csv_path()
    r.run_root("r1")
    assert list(workspace.iterdir()) == []


def test_ensure_mutable_tree_creates_the_four_folders(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    r = PathResolver(workspace)
    r.ensure_mutable_tree()
    assert sorted(p.name for p in workspace.iterdir()) == ["logs", "reports", "runs", "tables"]
    assert all(p.is_dir() for p in workspace.iterdir())
    (workspace / "tables" / "keep.txt").write_text("x")
    r.ensure_mutable_tree()  # idempotent, keeps what is there
    assert (workspace / "tables" / "keep.txt").read_text() == "x"
    assert sorted(p.name for p in workspace.iterdir()) == ["logs", "reports", "runs", "tables"]


def test_id_getters_validate_ids(tmp_path: Path) -> None:
    r = PathResolver(tmp_path)
    with pytest.raises(InvalidIdError):
        r.run_root("../x")
    with pytest.raises(InvalidIdError):
        r.job_outputs_dir("r1", "..")
    with pytest.raises(InvalidIdError):
        r.marker_path("r1", "a/b", "completed")


# --- rel_to_workspace / resolve_rel ----------------------------------------------------------------


def test_rel_to_workspace_gives_posix_relative_paths(tmp_path: Path) -> None:
    r = PathResolver(tmp_path)
    assert r.rel_to_workspace(tmp_path / "runs" / "r1" / "outputs" / "j1" / "generated.glb") == (
        "runs/r1/outputs/j1/generated.glb"
    )
    assert r.rel_to_workspace(str(tmp_path / "tables" / "generations.csv")) == "tables/generations.csv"
    assert r.rel_to_workspace(Path("runs") / "r1" / "manifest.csv") == "runs/r1/manifest.csv"
    assert r.rel_to_workspace(tmp_path / "runs" / "r1" / ".." / "r2" / "x.glb") == "runs/r2/x.glb"


@pytest.mark.parametrize("outside", ["/etc/passwd", "../x", "runs/../../x"])
def test_rel_to_workspace_raises_outside(tmp_path: Path, outside: str) -> None:
    workspace = tmp_path / "ws"
    r = PathResolver(workspace)
    with pytest.raises(InputError):
        r.rel_to_workspace(outside)
    with pytest.raises(InputError):
        r.rel_to_workspace(tmp_path / "other" / "x.glb")
    with pytest.raises(InputError):
        r.rel_to_workspace(tmp_path / "ws-sibling" / "x.glb")  # shares a prefix, is not inside


def test_resolve_rel_accepts_posix_and_windows_relative(tmp_path: Path) -> None:
    r = PathResolver(tmp_path)
    expected = tmp_path / "runs" / "r1" / "outputs" / "j1" / "generated.glb"
    assert r.resolve_rel("runs/r1/outputs/j1/generated.glb") == expected
    assert r.resolve_rel("runs\\r1\\y.glb") == tmp_path / "runs" / "r1" / "y.glb"
    assert r.resolve_rel("a..b/c") == tmp_path / "a..b" / "c"


@pytest.mark.parametrize(
    "bad",
    [
        "/etc/passwd",
        "/",
        "C:\\x\\y.glb",
        "c:/x",
        "\\\\server\\share",
        "..",
        "../x",
        "runs/../../x",
        "runs\\..\\x",
        "a/..",
        "",
    ],
)
def test_resolve_rel_rejects_absolute_and_parent(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputError):
        PathResolver(tmp_path).resolve_rel(bad)


# --- validate_id ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "good", ["a", "00123", "197260739297", "12e456789012", "run-1.2_x", "Z9", "a" * 128, "x" + "-._a" * 31 + "bcd"]
)
def test_validate_id_accepts(good: str) -> None:
    assert validate_id(good) == good
    assert validate_id(good, "job_id") is good


@pytest.mark.parametrize(
    "bad",
    ["..", "../x", "a/b", "a\\b", "/", "", ".hidden", "-x", "_x", "a" * 129, "a b", "a\n", "\na", "é", "a:b", "a\0"],
)
def test_validate_id_rejects(bad: str) -> None:
    with pytest.raises(InvalidIdError) as caught:
        validate_id(bad, "run_id")
    assert "run_id" in str(caught.value)
    assert isinstance(caught.value, InputError)
    assert isinstance(caught.value, ValueError)


def test_invalid_id_error_hierarchy() -> None:
    assert issubclass(InvalidIdError, InputError)
    assert issubclass(InvalidIdError, ValueError)
    with pytest.raises(ValueError):
        validate_id("a/b")
    with pytest.raises(InputError):
        validate_id("a/b")
