"""Tray icons drawn at run time with Pillow (no image files to ship or lose).

Each state has its own SHAPE, not only its own colour, so it reads at 16 px and for a colour-blind
user: a check in a disc (up to date), a circular arrow (working), two pause bars on a rounded square
(paused), a cloud with a slash (offline), "!" in a triangle (needs attention), "×" in a disc (error).
The labedge mark, a small dark corner bracket (the "edge" of the lab), sits bottom-left on every icon.
Drawn 4× larger and scaled down, so edges stay smooth at small sizes.
"""
from __future__ import annotations

from PIL import Image, ImageDraw

from tray.state import ATTENTION, ERROR, OFFLINE, PAUSED, UP_TO_DATE, WORKING

COLOURS = {
    UP_TO_DATE: (46, 160, 67),
    WORKING: (33, 118, 210),
    PAUSED: (96, 105, 117),
    OFFLINE: (112, 128, 150),
    ATTENTION: (240, 170, 0),
    ERROR: (210, 50, 40),
}
WHITE = (255, 255, 255, 255)
INK = (30, 36, 44, 255)


def icon_image(level: str, size: int = 64) -> Image.Image:
    big = 256
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    colour = (*COLOURS.get(level, COLOURS[ERROR]), 255)
    s = big / 100.0  # draw in a 100-unit box

    def box(*xy: float) -> list[float]:
        return [v * s for v in xy]

    if level == UP_TO_DATE:
        d.ellipse(box(4, 4, 96, 96), fill=colour)
        d.line(box(26, 52, 43, 69, 75, 34), fill=WHITE, width=int(13 * s), joint="curve")
    elif level == WORKING:
        d.ellipse(box(4, 4, 96, 96), fill=colour)
        d.arc(box(24, 24, 76, 76), 20, 290, fill=WHITE, width=int(12 * s))
        d.polygon(box(60, 10, 84, 30, 56, 40), fill=WHITE)  # the arrow head at the end of the arc
    elif level == PAUSED:
        d.rounded_rectangle(box(6, 6, 94, 94), radius=18 * s, fill=colour)
        d.rectangle(box(28, 24, 43, 76), fill=WHITE)
        d.rectangle(box(57, 24, 72, 76), fill=WHITE)
    elif level == OFFLINE:
        for e in ((8, 42, 44, 78), (26, 22, 70, 66), (54, 38, 92, 76)):
            d.ellipse(box(*e), fill=colour)
        d.rectangle(box(26, 56, 74, 78), fill=colour)
        d.line(box(14, 14, 86, 88), fill=WHITE, width=int(20 * s))
        d.line(box(14, 14, 86, 88), fill=INK, width=int(10 * s))
    elif level == ATTENTION:
        d.polygon(box(50, 4, 98, 92, 2, 92), fill=colour)
        d.rectangle(box(43, 30, 57, 64), fill=INK)
        d.rectangle(box(43, 71, 57, 84), fill=INK)
    else:  # error: × in a disc
        d.ellipse(box(4, 4, 96, 96), fill=colour)
        d.line(box(30, 30, 70, 70), fill=WHITE, width=int(14 * s))
        d.line(box(30, 70, 70, 30), fill=WHITE, width=int(14 * s))
    # the labedge mark: a corner bracket, outlined white so it reads on any panel colour
    d.line(box(4, 62, 4, 96, 38, 96), fill=WHITE, width=int(14 * s))
    d.line(box(4, 64, 4, 96, 36, 96), fill=INK, width=int(8 * s))
    return img.resize((size, size), Image.LANCZOS)
