"""Phase 4: consolidate one run's on-disk evidence with tables/generations.csv.

options (what is asked), selection (which jobs), deciding (one job: settled check or reconciler),
parallel (several processes), plan (the table edit and its counters), write (under the lock),
summary (the record), service (consolidate() itself).
"""

from __future__ import annotations

from archi3d.consolidation.options import MAX_WORKERS, ConsolidateOptions
from archi3d.consolidation.service import consolidate
from archi3d.consolidation.summary import Counts, Summary

__all__ = ["MAX_WORKERS", "ConsolidateOptions", "Counts", "Summary", "consolidate"]
