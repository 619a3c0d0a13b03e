"""Bar charts drawn as PNG images with the standard library only (zlib), for mail clients
that show no SVG: rectangles, and numbers in a small bitmap font (digits, '-', '.', ':').
Words (titles, names) stay in the HTML around the image."""
from __future__ import annotations

import struct
import zlib

# 3x5 glyphs, one string of 15 bits per character, row by row.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "-": "000000111000000", ".": "000000000000010",
    ":": "000010000010000", " ": "000000000000000",
}


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


class Canvas:
    def __init__(self, width: int, height: int, background: str = "#ffffff") -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(_rgb(background)) * (width * height))

    def rect(self, x: float, y: float, w: float, h: float, colour: str) -> None:
        r, g, b = _rgb(colour)
        x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
        x1, y1 = min(self.width, int(round(x + w))), min(self.height, int(round(y + h)))
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes((r, g, b)) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x: float, y: float, value: str, colour: str, *, scale: int = 2,
             anchor: str = "start") -> None:
        """Digits and '-', '.', ':' (any other character is left out)."""
        value = "".join(c for c in value if c in _GLYPHS)
        width = len(value) * 4 * scale - scale
        if anchor == "middle":
            x -= width / 2
        elif anchor == "end":
            x -= width
        for i, char in enumerate(value):
            bits = _GLYPHS[char]
            for n, bit in enumerate(bits):
                if bit == "1":
                    self.rect(x + (i * 4 + n % 3) * scale, y + (n // 3) * scale, scale, scale, colour)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                       for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


AXIS = "#6b7280"
INK = "#111827"


def number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def bars(values: list[float], labels: list[str], *, colour: str, label_every: int = 1,
         width: int = 640, height: int = 200) -> bytes:
    """A vertical bar chart: each bar with its number over it, its label under it."""
    canvas = Canvas(width, height)
    n = max(1, len(values))
    top = max(values) if values and max(values) > 0 else 1
    left, bottom, right, head = 8, 24, 8, 20
    plot_w, plot_h = width - left - right, height - bottom - head
    step = plot_w / n
    canvas.rect(left, head + plot_h, plot_w, 1, AXIS)
    for i, (value, label) in enumerate(zip(values, labels)):
        h = plot_h * value / top
        x = left + i * step + step * 0.15
        canvas.rect(x, head + plot_h - h, step * 0.7, h, colour)
        if value:
            canvas.text(x + step * 0.35, head + plot_h - h - 13, number(value), INK, anchor="middle")
        if i % label_every == 0:
            canvas.text(x + step * 0.35, height - 16, label, AXIS, anchor="middle")
    return canvas.png()


def paired_bars(rows: list[tuple[float, float]], *, colours: tuple[str, str],
                width: int = 640) -> bytes:
    """Two horizontal bars per row (e.g. median and p90), each with its number; rows are
    numbered 1, 2, … on the left (their names are in the HTML next to the image)."""
    row_h, left, right = 34, 40, 90
    height = max(1, len(rows)) * row_h + 12
    canvas = Canvas(width, height)
    top = max([max(a, b) for a, b in rows] + [1])
    plot_w = width - left - right
    for i, pair in enumerate(rows):
        y = 8 + i * row_h
        canvas.text(left - 8, y + 8, str(i + 1), INK, anchor="end")
        for j, (value, colour) in enumerate(zip(pair, colours)):
            w = plot_w * value / top
            canvas.rect(left, y + j * 13, w, 11, colour)
            canvas.text(left + w + 6, y + j * 13 + 1, number(value), INK)
    return canvas.png()
