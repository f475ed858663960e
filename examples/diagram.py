"""A diagram service: tools that return images, a log to the caller, and mixed content.

The PNG is drawn with the standard library alone (``zlib`` and ``struct``), so
the example needs no imaging package. Run it with ``python examples/diagram.py``,
then call it::

    iccm-network call ws://localhost:8000 bar_chart '{"values": [3, 1, 4, 1, 5]}'

The client gets an ``Image`` back (``MCPClient.call``); a model sees an
``image`` content block with base64 PNG data.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Annotated

from iccm_network import App, Context, File, Image

app = App("diagram", version="1.0.0")

BAR = (40, 90, 200)
BACKGROUND = (255, 255, 255)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(pixels: Sequence[Sequence[tuple[int, int, int]]]) -> bytes:
    """Encode rows of RGB pixels as a PNG file.

    Args:
        pixels: Rows of equal length, top first, each pixel ``(r, g, b)``.
    """
    height = len(pixels)
    width = len(pixels[0]) if height else 0
    # Each scanline starts with its filter type; 0 is "none".
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def bar_pixels(
    values: Sequence[float], bar_width: int, height: int
) -> list[list[tuple[int, int, int]]]:
    """The pixels of a bar chart, scaled so the largest value fills the height.

    Args:
        values: One bar per value; negative values draw nothing.
        bar_width: Pixels per bar, one of them a gap.
        height: The image's height in pixels.
    """
    top = max([*values, 0]) or 1
    heights = [round(max(value, 0) / top * height) for value in values]
    rows = []
    for y in range(height):
        row = []
        for bar in heights:
            filled = height - y <= bar
            row.extend([BAR if filled else BACKGROUND] * (bar_width - 1) + [BACKGROUND])
        rows.append(row)
    return rows


@app.tool(annotations={"readOnlyHint": True})
async def bar_chart(
    values: Annotated[list[float], "The bar heights, left to right."],
    ctx: Context,
    height: int = 64,
) -> Image:
    """Draw a bar chart of some numbers as a PNG image.

    Args:
        values: The bar heights, left to right.
        ctx: Filled in by the framework.
        height: The image's height in pixels.
    """
    if not values:
        await ctx.warning("no values: the chart is empty")
    await ctx.info("drawing a bar chart", bars=len(values), height=height)
    return Image(png(bar_pixels(values or [0], 8, max(1, min(height, 512)))))


@app.tool(annotations={"readOnlyHint": True})
def chart_report(values: list[float]) -> list[str | Image | File]:
    """A chart with its caption and its data as a CSV attachment.

    Args:
        values: The bar heights, left to right.
    """
    csv = "index,value\n" + "".join(f"{i},{v:g}\n" for i, v in enumerate(values))
    return [
        f"{len(values)} bars, largest {max(values, default=0):g}",
        Image(png(bar_pixels(values or [0], 8, 32))),
        File(csv, name="values.csv"),
    ]


if __name__ == "__main__":
    app.run()
