"""Tray icons drawn at run time with Pillow (no image files to ship or lose)."""
from __future__ import annotations

from PIL import Image, ImageDraw

from tray.state import ATTENTION, ERROR, OFFLINE, PAUSED, UP_TO_DATE, WORKING

COLOURS = {
    UP_TO_DATE: (46, 160, 67),
    WORKING: (33, 118, 210),
    PAUSED: (120, 120, 120),
    OFFLINE: (150, 150, 150),
    ATTENTION: (230, 160, 0),
    ERROR: (210, 50, 40),
}


def icon_image(level: str, size: int = 64) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    m = size // 16
    d.ellipse((m, m, size - m, size - m), fill=COLOURS.get(level, COLOURS[ERROR]))
    c, w = size // 2, max(2, size // 10)
    white = (255, 255, 255, 255)
    if level == UP_TO_DATE:
        d.line([(size * 0.28, c), (size * 0.45, size * 0.66), (size * 0.74, size * 0.34)], fill=white, width=w)
    elif level == WORKING:
        d.arc((size * 0.25, size * 0.25, size * 0.75, size * 0.75), 30, 300, fill=white, width=w)
    elif level == PAUSED:
        d.rectangle((size * 0.33, size * 0.28, size * 0.44, size * 0.72), fill=white)
        d.rectangle((size * 0.56, size * 0.28, size * 0.67, size * 0.72), fill=white)
    elif level == OFFLINE:
        d.line([(size * 0.3, size * 0.3), (size * 0.7, size * 0.7)], fill=white, width=w)
    else:  # attention / error: an exclamation mark
        d.rectangle((c - w // 2, size * 0.22, c + w // 2, size * 0.6), fill=white)
        d.rectangle((c - w // 2, size * 0.68, c + w // 2, size * 0.78), fill=white)
    return img
