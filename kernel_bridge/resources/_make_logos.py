"""Draw the kernel_bridge logo (a through-arch bridge) as PNG and SVG, with the stdlib only.

Run ``python -m kernel_bridge.resources._make_logos [DIR ...]`` to (re)write
``logo-32x32.png``, ``logo-64x64.png`` and ``logo-svg.svg`` into each DIR (by default this
package's directory and the repository's ``kernelspec/``). The output is deterministic, so a
test can regenerate the files and compare them byte for byte with the committed ones.

The glyph is drawn on a 64-unit grid: a rounded Python-blue square, a white arch with five
hangers, a yellow deck and two piers. PNG pixels are 4x4 supersampled for smooth edges.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["SVG_LOGO", "png_logo", "write_logos"]

Colour = tuple[int, int, int]

BLUE: Colour = (0x37, 0x76, 0xAB)
WHITE: Colour = (0xFF, 0xFF, 0xFF)
YELLOW: Colour = (0xFF, 0xD4, 0x3B)

GRID = 64.0
CORNER = 12.0
ARCH_CENTRE = (32.0, 42.0)
ARCH_OUTER = 24.0
ARCH_INNER = 20.0
HANGERS_X = (20.0, 26.0, 32.0, 38.0, 44.0)
HANGER_HALF_WIDTH = 1.0
DECK = (4.0, 40.0, 60.0, 45.0)  # x0, y0, x1, y1
PIERS = ((12.0, 45.0, 16.0, 55.0), (48.0, 45.0, 52.0, 55.0))


def _in_rounded_square(x: float, y: float) -> bool:
    cx = min(max(x, CORNER), GRID - CORNER)
    cy = min(max(y, CORNER), GRID - CORNER)
    return 0.0 <= x <= GRID and 0.0 <= y <= GRID and (x - cx) ** 2 + (y - cy) ** 2 <= CORNER**2


def _in_rect(x: float, y: float, rect: tuple[float, float, float, float]) -> bool:
    x0, y0, x1, y1 = rect
    return x0 <= x <= x1 and y0 <= y <= y1


def _in_arch(x: float, y: float) -> bool:
    cx, cy = ARCH_CENTRE
    d2 = (x - cx) ** 2 + (y - cy) ** 2
    return y <= cy and ARCH_INNER**2 <= d2 <= ARCH_OUTER**2


def _in_hanger(x: float, y: float) -> bool:
    cx, cy = ARCH_CENTRE
    for hx in HANGERS_X:
        if abs(x - hx) <= HANGER_HALF_WIDTH and y <= DECK[1]:
            top = cy - (ARCH_INNER**2 - (hx - cx) ** 2) ** 0.5
            if y >= top:
                return True
    return False


def _colour_at(x: float, y: float) -> Colour | None:
    """Return the colour of the glyph at grid point (x, y), or None outside the square."""
    if not _in_rounded_square(x, y):
        return None
    if _in_rect(x, y, DECK):
        return YELLOW
    if _in_arch(x, y) or _in_hanger(x, y) or any(_in_rect(x, y, p) for p in PIERS):
        return WHITE
    return BLUE


def _render(size: int, colour_at: Callable[[float, float], Colour | None]) -> bytes:
    """Rasterise to straight-alpha RGBA rows, each prefixed with PNG filter byte 0."""
    samples = 4
    scale = GRID / size
    rows = bytearray()
    for py in range(size):
        rows.append(0)
        for px in range(size):
            r = g = b = hits = 0
            for sy in range(samples):
                for sx in range(samples):
                    x = (px + (sx + 0.5) / samples) * scale
                    y = (py + (sy + 0.5) / samples) * scale
                    c = colour_at(x, y)
                    if c is not None:
                        r, g, b, hits = r + c[0], g + c[1], b + c[2], hits + 1
            if hits:
                rows += bytes((r // hits, g // hits, b // hits, 255 * hits // samples**2))
            else:
                rows += b"\x00\x00\x00\x00"
    return bytes(rows)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_logo(size: int) -> bytes:
    """Return the logo as a size x size RGBA PNG file's bytes."""
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    pixels = zlib.compress(_render(size, _colour_at), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def _svg() -> str:
    cx, cy = ARCH_CENTRE
    hangers = "\n".join(
        f'    <rect x="{hx - HANGER_HALF_WIDTH:g}" '
        f'y="{cy - (ARCH_INNER**2 - (hx - cx) ** 2) ** 0.5:.2f}" '
        f'width="{2 * HANGER_HALF_WIDTH:g}" '
        f'height="{DECK[1] - cy + (ARCH_INNER**2 - (hx - cx) ** 2) ** 0.5:.2f}"/>'
        for hx in HANGERS_X
    )
    piers = "\n".join(
        f'    <rect x="{x0:g}" y="{y0:g}" width="{x1 - x0:g}" height="{y1 - y0:g}"/>'
        for x0, y0, x1, y1 in PIERS
    )
    dx0, dy0, dx1, dy1 = DECK
    outer, inner = ARCH_OUTER, ARCH_INNER
    arch = (
        f"M {cx - outer:g} {cy:g} A {outer:g} {outer:g} 0 0 1 {cx + outer:g} {cy:g} "
        f"L {cx + inner:g} {cy:g} A {inner:g} {inner:g} 0 0 0 {cx - inner:g} {cy:g} Z"
    )
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <title>kernel_bridge</title>
  <rect width="64" height="64" rx="{CORNER:g}" fill="#3776ab"/>
  <g fill="#ffffff">
    <path d="{arch}"/>
{hangers}
{piers}
  </g>
  <rect x="{dx0:g}" y="{dy0:g}" width="{dx1 - dx0:g}" height="{dy1 - dy0:g}" fill="#ffd43b"/>
</svg>
"""


#: The SVG logo's text.
SVG_LOGO: str = _svg()


def write_logos(directory: Path) -> list[Path]:
    """Write the three logo files into ``directory`` (created if missing); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for size in (32, 64):
        path = directory / f"logo-{size}x{size}.png"
        path.write_bytes(png_logo(size))
        written.append(path)
    svg = directory / "logo-svg.svg"
    svg.write_text(SVG_LOGO, encoding="utf-8")
    written.append(svg)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Write the logos into the given directories (default: package data and kernelspec/)."""
    args = list(sys.argv[1:] if argv is None else argv)
    here = Path(__file__).resolve().parent
    targets = [Path(a) for a in args] or [here, here.parent.parent / "kernelspec"]
    for target in targets:
        for path in write_logos(target):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
