"""Column names of generations.csv and manifest.csv, in the spec's order."""

from __future__ import annotations

__all__ = [
    "GENERATIONS_COLUMNS",
    "MANIFEST_COLUMNS",
    "MANIFEST_REQUIRED",
    "NUMBER_COLUMNS",
    "PATH_COLUMNS",
    "PREVIEW_COLUMNS",
    "TIMESTAMP_COLUMNS",
]

_SOURCE_IMAGES = tuple(f"source_image_{n}_path" for n in range(1, 7))
_USED_IMAGES = tuple(f"used_image_{n}_path" for n in range(1, 7))
_PREVIEWS = tuple(f"preview_{n}_path" for n in range(1, 4))

GENERATIONS_COLUMNS: tuple[str, ...] = (
    "product_id", "variant", "manufacturer", "product_name",
    "category_l1", "category_l2", "category_l3", "description",
    "source_n_images", *_SOURCE_IMAGES, "gt_object_path",
    "run_id", "job_id", "algo", "algo_version", "used_n_images", *_USED_IMAGES, "image_set_hash",
    "status", "created_at", "notes", "generation_start", "generation_end", "generation_duration_s",
    "unit_price_usd", "price_source", "gen_object_path", *_PREVIEWS, "error_msg",
    "worker_host", "worker_user", "worker_gpu", "worker_env", "worker_commit",
)  # fmt: skip

MANIFEST_COLUMNS: tuple[str, ...] = (
    "job_id", "product_id", "variant", "algo", "used_n_images", *_USED_IMAGES,
    "image_set_hash", "gt_object_path", "product_name", "manufacturer",
)  # fmt: skip
MANIFEST_REQUIRED: tuple[str, ...] = ("job_id", "product_id", "variant", "algo")

TIMESTAMP_COLUMNS: tuple[str, ...] = ("created_at", "generation_start", "generation_end")
NUMBER_COLUMNS: tuple[str, ...] = ("source_n_images", "used_n_images", "generation_duration_s", "unit_price_usd")
PATH_COLUMNS: tuple[str, ...] = tuple(c for c in GENERATIONS_COLUMNS if c.endswith("_path"))
PREVIEW_COLUMNS: tuple[str, ...] = _PREVIEWS
