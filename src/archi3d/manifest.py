"""A run's manifest: its job_ids in file order, each Job built only when asked for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView

from archi3d.csvtable import CsvTable, read_csv_table
from archi3d.model import Job
from archi3d.paths import PathResolver
from archi3d.schema import validate_manifest

__all__ = ["Manifest"]


class Manifest:
    """The validated manifest.csv of one run (the first entry of a job_id wins)."""

    def __init__(self, table: CsvTable | None = None) -> None:
        self._table = table
        self._index: dict[str, int] = {}
        if table is not None and len(table):
            for index, job_id in enumerate(table.column("job_id")):
                self._index.setdefault(job_id, index)

    @classmethod
    def read(cls, resolver: PathResolver, run_id: str) -> Manifest:
        """The run's manifest; empty when it has none."""
        path = resolver.manifest_path(run_id)
        return cls(read_csv_table(path, validate_manifest) if path.exists() else None)

    @property
    def job_ids(self) -> KeysView[str]:
        return self._index.keys()

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def jobs(self, job_ids: Iterable[str]) -> dict[str, Job]:
        """The Job of each given job_id that the manifest has."""
        wanted = [(job_id, self._index[job_id]) for job_id in job_ids if job_id in self._index]
        if self._table is None or not wanted:
            return {}
        cells = self._table.rows([index for _, index in wanted])
        return {job_id: Job.from_cells(row) for (job_id, _), row in zip(wanted, cells)}
