"""Demo workspace generator: one run holding every situation consolidate must settle, built deterministically."""

from __future__ import annotations

from archi3d.demo.expectations import EXPECTATIONS_FILE, Expectation
from archi3d.demo.files import PNG_SIGNATURE as PNG_SIGNATURE
from archi3d.demo.files import glb_bytes, png_bytes
from archi3d.demo.jobs import LATER_PHASE_COLUMNS, TABLE_COLUMNS
from archi3d.demo.situations import SITUATIONS, situation_counts
from archi3d.demo.workspace import DEFAULT_NOW, DemoWorkspace, build_demo_workspace

__all__ = [
    "DEFAULT_NOW",
    "EXPECTATIONS_FILE",
    "LATER_PHASE_COLUMNS",
    "SITUATIONS",
    "TABLE_COLUMNS",
    "DemoWorkspace",
    "Expectation",
    "build_demo_workspace",
    "glb_bytes",
    "png_bytes",
    "situation_counts",
]
