"""Generated demo jobs: their catalogue data, timeline and unique ids, and the table rows that describe them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping, Sequence

import attrs

from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.formats import UTC

__all__ = [
    "LATER_PHASE_COLUMNS",
    "TABLE_COLUMNS",
    "IdSource",
    "Job",
    "Record",
    "completed_row",
    "enqueued_row",
    "failed_row",
    "iso",
    "random_job",
    "running_row",
    "table_record",
]

LATER_PHASE_COLUMNS: tuple[str, ...] = ("fscore", "fscore_status", "vf_status", "vfscore_overall")
TABLE_COLUMNS: tuple[str, ...] = (*GENERATIONS_COLUMNS, *LATER_PHASE_COLUMNS)
_NUMERIC_LOOKING_IDS = ("197260739297", "12e456789012")

_ALGOS = (  # name, version, unit price in USD
    ("trellis", "1.0.2", ""),
    ("hunyuan3d_2", "2.1", ""),
    ("tripo3d_v2", "v2.5", "0.25"),
    ("meshy_v4", "4", "0.20"),
)
_VARIANTS = ("default", "oak", "walnut", "black", "white")
_MANUFACTURERS = ("Muuto", "HAY", "Møbelfabrikken", "Vitra", "Ligne Roset")
_NAMES = ("Oslo", "Bergen", "Nord", "Fjord", "Kubus", "Loop", "Arc", "Tide")
_KINDS = (("Furniture", "Seating", "Chairs"), ("Furniture", "Tables", "Side tables"), ("Lighting", "Lamps", "Floor"))


@attrs.frozen
class Job:
    """One job's catalogue data and timeline (its attempt ran from start for duration_ms)."""

    run_id: str
    job_id: str
    product_id: str
    variant: str
    algo: str
    algo_version: str
    unit_price_usd: str
    product_name: str
    manufacturer: str
    categories: tuple[str, str, str]
    description: str
    source_images: tuple[str, ...]
    used_images: tuple[str, ...]
    image_set_hash: str
    created_at: dt.datetime
    start: dt.datetime
    duration_ms: int
    pid: int
    host: str

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(milliseconds=self.duration_ms)

    @property
    def duration_text(self) -> str:
        return f"{self.duration_ms / 1000:.3f}"

    @property
    def outputs(self) -> str:
        return f"runs/{self.run_id}/outputs/{self.job_id}"

    @property
    def state(self) -> str:
        return f"runs/{self.run_id}/state/{self.job_id}"

    @property
    def generated_object(self) -> str:
        return f"{self.outputs}/generated.glb"

    @property
    def reference_object(self) -> str:
        """Where the reference archi3D worker puts the object."""
        return f"{self.outputs}/{self.product_id}_{self.variant}_{self.algo}_{self.job_id[:8]}.glb"

    def manifest_cells(self) -> dict[str, str]:
        cells = {
            "job_id": self.job_id,
            "product_id": self.product_id,
            "variant": self.variant,
            "algo": self.algo,
            "used_n_images": str(len(self.used_images)),
            "image_set_hash": self.image_set_hash,
            "gt_object_path": f"dataset/{self.product_id}/gt/{self.product_id}.glb",
            "product_name": self.product_name,
            "manufacturer": self.manufacturer,
        }
        for n in range(1, 7):
            cells[f"used_image_{n}_path"] = self.used_images[n - 1] if n <= len(self.used_images) else ""
        return cells


def random_job(rng: random.Random, run_id: str, job_id: str, base: dt.datetime, product_id: str = "") -> Job:
    product_id = product_id or f"{rng.randrange(1, 100_000):05d}"
    algo, version, price = rng.choice(_ALGOS)
    n_source = rng.randint(1, 6)
    sources = tuple(f"dataset/{product_id}/images/{product_id}_{k}.jpg" for k in range(1, n_source + 1))
    name = _product_name(rng)
    start = base - dt.timedelta(seconds=rng.randrange(3_600, 10 * 86_400))
    return Job(
        run_id=run_id,
        job_id=job_id,
        product_id=product_id,
        variant=rng.choice(_VARIANTS),
        algo=algo,
        algo_version=version,
        unit_price_usd=price,
        product_name=name,
        manufacturer=rng.choice(_MANUFACTURERS),
        categories=rng.choice(_KINDS),
        description=_description(rng, name),
        source_images=sources,
        used_images=sources[: rng.randint(1, n_source)],
        image_set_hash=f"{rng.getrandbits(64):016x}",
        created_at=start - dt.timedelta(seconds=rng.randrange(60, 7_200)),
        start=start,
        duration_ms=rng.randrange(20_000, 900_000),
        pid=rng.randrange(1_000, 65_000),
        host=f"gpu-node-{rng.randrange(1, 9):02d}",
    )


def _product_name(rng: random.Random) -> str:
    name = f"{rng.choice(_NAMES)} {rng.choice(('chair', 'lamp', 'table', 'stool'))}"
    # Some names need CSV quoting, as real catalogues do.
    return f'{name} "{rng.choice(_NAMES)}", {rng.choice(_VARIANTS)}' if rng.random() < 0.1 else name


def _description(rng: random.Random, name: str) -> str:
    roll = rng.random()
    if roll < 0.02:
        return f"{name}.\nTwo-part frame; assembly required."
    if roll < 0.2:
        return f"{name}, solid wood, oiled finish"
    return ""


class IdSource:
    """Unique job ids: 12 hex digits like the reference worker's, or the numeric-looking ones asked for."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def hex_id(self) -> str:
        return self._claim(lambda: f"{self._rng.getrandbits(48):012x}")

    def numeric_looking_id(self, nth: int) -> str:
        if nth < len(_NUMERIC_LOOKING_IDS) and _NUMERIC_LOOKING_IDS[nth] not in self._used:
            return self._claim(lambda: _NUMERIC_LOOKING_IDS[nth])
        if nth % 2 == 0:
            return self._claim(lambda: str(self._rng.randrange(10**11, 10**12)))
        return self._claim(lambda: f"{self._rng.randrange(10, 100)}e{self._rng.randrange(10**8, 10**9)}")

    def _claim(self, draw: Callable[[], str]) -> str:
        candidate = draw()
        while candidate in self._used:
            candidate = draw()
        self._used.add(candidate)
        return candidate


Record = list[str]


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _catalogue_cells(job: Job, status: str) -> dict[str, str]:
    """The cells the enqueue phase writes: catalogue fields and the job's identity."""
    cells = dict.fromkeys(TABLE_COLUMNS, "")
    cells.update(job.manifest_cells())
    cells.update(
        category_l1=job.categories[0],
        category_l2=job.categories[1],
        category_l3=job.categories[2],
        description=job.description,
        source_n_images=str(len(job.source_images)),
        run_id=job.run_id,
        algo_version=job.algo_version,
        status=status,
        created_at=iso(job.created_at),
        unit_price_usd=job.unit_price_usd,
        price_source="vendor price list" if job.unit_price_usd else "",
    )
    for n, path in enumerate(job.source_images, start=1):
        cells[f"source_image_{n}_path"] = path
    return cells


def _worker_cells(job: Job) -> dict[str, str]:
    return {
        "worker_host": job.host,
        "worker_user": "bench",
        "worker_gpu": "NVIDIA A100 80GB",
        "worker_env": "py3.11-cu121",
        "worker_commit": "3f9c2ab",
    }


def enqueued_row(job: Job) -> dict[str, str]:
    return _catalogue_cells(job, "enqueued")


def running_row(job: Job) -> dict[str, str]:
    cells = _catalogue_cells(job, "running")
    cells.update(_worker_cells(job), generation_start=iso(job.start))
    return cells


def _finished_row(job: Job, status: str) -> dict[str, str]:
    cells = _catalogue_cells(job, status)
    cells.update(
        _worker_cells(job),
        generation_start=iso(job.start),
        generation_end=iso(job.end),
        generation_duration_s=job.duration_text,
    )
    return cells


def completed_row(job: Job, object_path: str, previews: Sequence[str]) -> dict[str, str]:
    cells = _finished_row(job, "completed")
    cells["gen_object_path"] = object_path
    for n, path in enumerate(previews, start=1):
        cells[f"preview_{n}_path"] = path
    return cells


def failed_row(job: Job, error_msg: str) -> dict[str, str]:
    cells = _finished_row(job, "failed")
    cells["error_msg"] = error_msg
    return cells


def table_record(cells: Mapping[str, str]) -> Record:
    # Rows are kept as lists, not dicts: a third of the memory at 300k rows.
    return [cells[name] for name in TABLE_COLUMNS]
