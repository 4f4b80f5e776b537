"""Workspace layout (Phase 0): where every file of a workspace lives, and id validation."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from archi3d.errors import InputError, InvalidIdError
from archi3d.formats import ID_PATTERN

__all__ = [
    "PathResolver",
    "is_safe_relative",
    "resolve_workspace",
    "resolves_within",
    "to_posix",
    "validate_id",
]

WORKSPACE_ENV = "ARCHI3D_WORKSPACE"


def validate_id(value: str, kind: str = "id") -> str:
    """Return `value` if it may be used as a run_id/job_id path component, else raise."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise InvalidIdError(
            f"invalid {kind} {value!r}: expected 1 to 128 characters of letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return value


def to_posix(path: str) -> str:
    """Windows separators become slashes; nothing else changes."""
    return path.replace("\\", "/")


_DRIVE = re.compile(r"[A-Za-z]:")


def is_safe_relative(path: str) -> bool:
    """True for a relative path that stays inside its root (either separator accepted)."""
    posix = to_posix(path)
    if not posix or posix.startswith("/") or _DRIVE.match(posix) or "\0" in posix:
        return False
    return ".." not in posix.split("/")


def resolves_within(path: str | os.PathLike[str], roots: Iterable[str]) -> bool:
    """Whether the real path of `path` (every link followed) lies inside one of the real paths `roots`."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def resolve_workspace(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The explicit path, else $ARCHI3D_WORKSPACE, else the current folder."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).absolute()
    env = os.environ.get(WORKSPACE_ENV)
    return Path(env).absolute() if env else Path.cwd()


class PathResolver:
    """Every path of a workspace. Getters are pure: they create nothing."""

    def __init__(self, workspace: str | os.PathLike[str] | None = None) -> None:
        self.workspace = resolve_workspace(workspace)

    @property
    def tables_root(self) -> Path:
        return self.workspace / "tables"

    @property
    def runs_root(self) -> Path:
        return self.workspace / "runs"

    @property
    def reports_root(self) -> Path:
        return self.workspace / "reports"

    @property
    def logs_root(self) -> Path:
        return self.workspace / "logs"

    def generations_csv_path(self) -> Path:
        return self.tables_root / "generations.csv"

    def generations_lock_path(self) -> Path:
        return self.generations_csv_path().with_suffix(".lock")

    def metrics_log_path(self) -> Path:
        return self.logs_root / "metrics.log"

    def worker_log_path(self) -> Path:
        return self.logs_root / "worker.log"

    def run_root(self, run_id: str) -> Path:
        return self.runs_root / validate_id(run_id, "run_id")

    def manifest_path(self, run_id: str) -> Path:
        return self.run_root(run_id) / "manifest.csv"

    def state_dir(self, run_id: str) -> Path:
        return self.run_root(run_id) / "state"

    def outputs_dir(self, run_id: str) -> Path:
        return self.run_root(run_id) / "outputs"

    def job_outputs_dir(self, run_id: str, job_id: str) -> Path:
        return self.outputs_dir(run_id) / validate_id(job_id, "job_id")

    def marker_path(self, run_id: str, job_id: str, kind: str) -> Path:
        return self.state_dir(run_id) / f"{validate_id(job_id, 'job_id')}.{kind}"

    def rel_to_workspace(self, path: str | os.PathLike[str]) -> str:
        """The POSIX workspace-relative form of `path`; raises if it lies outside."""
        target = Path(path)
        if not target.is_absolute():
            target = self.workspace / target
        try:
            rel = Path(os.path.normpath(target)).relative_to(os.path.normpath(self.workspace))
        except ValueError:
            raise InputError(f"{path}: outside the workspace {self.workspace}") from None
        return PurePosixPath(*rel.parts).as_posix()

    def resolve_rel(self, rel: str) -> Path:
        """The file a workspace-relative (POSIX or Windows) path names; raises if it escapes."""
        if not is_safe_relative(rel):
            raise InputError(f"{rel!r}: not a workspace-relative path")
        return self.workspace / to_posix(rel)

    def layout_roots(self, run_id: str) -> tuple[str, ...]:
        """Real paths under which a file a row of the run records may lie: the workspace and the layout
        folders on the way to the run's outputs, each of which may be a link to another disk."""
        folders = (self.workspace, self.runs_root, self.run_root(run_id), self.outputs_dir(run_id))
        return tuple(dict.fromkeys(os.path.realpath(folder) for folder in folders))

    def check_layout(self, run_id: str | None = None) -> None:
        """Raise InputError when the workspace is missing, or a folder of its layout (of the run) is not a folder.

        A layout folder that is a link is followed; one whose link leads nowhere is an error too, never
        "no evidence" (outputs on a disk that is not mounted).
        """
        if not self.workspace.is_dir():
            what = "is not a folder" if os.path.lexists(self.workspace) else "not found"
            raise InputError(f"workspace {self.workspace}: {what}")
        folders = [self.tables_root, self.logs_root, self.runs_root]
        if run_id is not None:
            folders += [self.run_root(run_id), self.state_dir(run_id), self.outputs_dir(run_id)]
        for folder in folders:
            if os.path.lexists(folder) and not folder.is_dir():
                what = (
                    f"a link to {os.readlink(folder)}, which is not a folder" if folder.is_symlink() else "not a folder"
                )
                raise InputError(f"{folder}: {what}; expected a folder of the workspace layout. Nothing was changed.")

    def ensure_mutable_tree(self) -> None:
        for folder in (self.tables_root, self.runs_root, self.reports_root, self.logs_root):
            folder.mkdir(parents=True, exist_ok=True)
