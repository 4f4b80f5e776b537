"""The archi3d command line: commands parse their options and call the package; render prints plain text."""

from __future__ import annotations

from archi3d.cli.commands import app, main

__all__ = ["app", "main"]
