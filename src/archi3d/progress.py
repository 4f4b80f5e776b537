"""Progress reports of long work: which phase, how far it has come, out of how much."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): `total` 0 when the phase is not counted (done is then 0 too)."""
