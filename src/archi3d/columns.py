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

# Written out, as DESIGN.md lists them: names written in the source are the very strings the row
# class's parameters are, so a keyword argument finds its parameter at once.
_SOURCE_IMAGES = (
    "source_image_1_path", "source_image_2_path", "source_image_3_path",
    "source_image_4_path", "source_image_5_path", "source_image_6_path",
)  # fmt: skip
_USED_IMAGES = (
    "used_image_1_path", "used_image_2_path", "used_image_3_path",
    "used_image_4_path", "used_image_5_path", "used_image_6_path",
)  # fmt: skip
_PREVIEWS = ("preview_1_path", "preview_2_path", "preview_3_path")

GENERATIONS_COLUMNS: tuple[str, ...] = (
    "product_id", "variant", "manufacturer", "product_name",
    "category_l1", "category_l2", "category_l3", "description",
    "source_n_images", *_SOURCE_IMAGES, "gt_object_path",
    "run_id", "job_id", "algo", "algo_version", "used_n_images", *_USED_IMAGES, "image_set_hash",
    "status", "created_at", "notes", "generation_start", "generation_end", "generation_duration_s",
    "unit_price_usd", "price_source", "gen_object_path", *_PREVIEWS, "error_msg",
    "worker_host", "worker_user", "worker_gpu", "worker_env", "worker_commit",
    "gen_object_sha256", "gen_object_bytes",
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
