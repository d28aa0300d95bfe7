"""The committed logos are real PNG/SVG files, in sync with their generator and kernelspec/."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from kernel_bridge.kernelspecs import LOGO_FILES, RESOURCES_DIR
from kernel_bridge.resources._make_logos import BLUE, WHITE, YELLOW, write_logos

REPO = Path(__file__).resolve().parents[2]


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Return (width, height, RGBA rows) of an 8-bit RGBA, filter-0 PNG as we write them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", header)
    assert (depth, colour) == (8, 6)
    raw = zlib.decompress(idat)
    stride = 1 + 4 * width
    rows = [raw[i * stride : (i + 1) * stride] for i in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [row[1:] for row in rows]


@pytest.mark.parametrize("size", [32, 64])
def test_png_logo_has_the_right_size_and_colours(size: int) -> None:
    width, height, rows = decode_png((RESOURCES_DIR / f"logo-{size}x{size}.png").read_bytes())
    assert (width, height) == (size, size)
    pixels = {bytes(row[i : i + 4]) for row in rows for i in range(0, len(row), 4)}
    for colour in (BLUE, WHITE, YELLOW):
        assert bytes((*colour, 255)) in pixels
    assert b"\x00\x00\x00\x00" in pixels  # transparent rounded corners

    def pixel(grid_x: int, grid_y: int) -> bytes:
        x, y = grid_x * size // 64, grid_y * size // 64
        return bytes(rows[y][4 * x : 4 * x + 4])

    assert pixel(32, 42) == bytes((*YELLOW, 255))  # the deck
    assert pixel(32, 20) == bytes((*WHITE, 255))  # the top of the arch
    assert pixel(32, 10) == bytes((*BLUE, 255))  # sky above it


def test_svg_logo_is_well_formed() -> None:
    root = ET.parse(RESOURCES_DIR / "logo-svg.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 64 64"


def test_committed_logos_match_the_generator(tmp_path: Path) -> None:
    write_logos(tmp_path)
    for name in LOGO_FILES:
        fresh = (tmp_path / name).read_bytes()
        assert (RESOURCES_DIR / name).read_bytes() == fresh, f"regenerate {name}"
        assert (REPO / "kernelspec" / name).read_bytes() == fresh, f"kernelspec/{name} stale"
