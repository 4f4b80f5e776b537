"""Synthetic file contents for the demo: a minimal GLB object and solid-colour PNG previews."""

from __future__ import annotations

import json
import struct
import zlib

from archi3d.formats import PNG_SIGNATURE

__all__ = ["GLB", "NOT_A_PNG", "PNG_SIGNATURE", "PREVIEW_PNGS", "glb_bytes", "png_bytes"]


def glb_bytes() -> bytes:
    """A minimal valid binary glTF 2.0 file: one scene, one node, one triangle mesh."""
    positions = struct.pack("<9f", 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    document = {
        "asset": {"version": "2.0", "generator": "archi3d demo"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "mode": 4}]}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "min": [0.0, 0.0, 0.0],
                "max": [1.0, 1.0, 0.0],
            }
        ],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions), "target": 34962}],
        "buffers": [{"byteLength": len(positions)}],
    }
    json_chunk = _padded(json.dumps(document, separators=(",", ":")).encode("utf-8"), b" ")
    bin_chunk = _padded(positions, b"\x00")
    body = _glb_chunk(b"JSON", json_chunk) + _glb_chunk(b"BIN\x00", bin_chunk)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _padded(data: bytes, filler: bytes) -> bytes:
    return data + filler * (-len(data) % 4)


def _glb_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + kind + data


def png_bytes(rgb: tuple[int, int, int], size: int = 4) -> bytes:
    """A valid size x size PNG of one solid colour (8-bit RGB)."""
    scanline = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanline * size, 9))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# Built once at import: every job's object and previews share these bytes.
GLB = glb_bytes()
_PREVIEW_COLOURS = ((200, 120, 40), (40, 120, 200), (90, 180, 90))
PREVIEW_PNGS = tuple(png_bytes(colour) for colour in _PREVIEW_COLOURS)
NOT_A_PNG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a jpeg saved as .png"
