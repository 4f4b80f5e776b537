"""What a consolidate run is asked to do."""

from __future__ import annotations

import attrs

from archi3d.lock import DEFAULT_LOCK_TIMEOUT
from archi3d.model import Status
from archi3d.rules import Options, StalePolicy

__all__ = ["MAX_WORKERS", "ConsolidateOptions"]

MAX_WORKERS = 8


@attrs.frozen
class ConsolidateOptions:
    """The options of `archi3d consolidate` (DESIGN.md, "Command")."""

    run_id: str
    dry_run: bool = False
    """Decide and report; write nothing but the metrics.log record."""
    strict: bool = False
    """Any conflict is an error: nothing written."""
    only_status: frozenset[Status] | None = None
    """Consider only jobs with these CSV statuses (a manifest-only job counts as enqueued)."""
    fix_status: bool = True
    """Apply status changes, or only report them."""
    max_rows: int | None = None
    """Consider at most this many jobs: CSV jobs in file order, then manifest-only jobs."""
    heartbeat_timeout: float = 600.0
    stale_policy: StalePolicy = StalePolicy.REQUEUE
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """Seconds to wait for the table lock, and again for a replace another program refuses."""
    report: str | None = None
    """A file to write every change and conflict to, as JSON lines (also under dry_run)."""
    verify_hashes: bool = False
    """Hash every completed job's object again (else only new objects and those whose size changed)."""
    workers: int | None = None
    """Processes deciding jobs (1 to MAX_WORKERS); None: one per core for large runs on Linux."""

    @property
    def rules(self) -> Options:
        """The options the rules take."""
        return Options(self.fix_status, self.heartbeat_timeout, self.stale_policy, self.verify_hashes)
