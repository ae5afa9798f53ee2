"""Captcha images for the sandbox: a real PNG with distorted text, as a bank would show."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def captcha_text(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def captcha_png(text: str, rng: random.Random) -> bytes:
    """A 160x56 PNG showing ``text`` over noise lines and speckles."""
    width, height = 160, 56
    image = Image.new("RGB", (width, height), (246, 244, 238))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        points = [(rng.randint(0, width), rng.randint(0, height)) for _ in range(2)]
        colour = tuple(rng.randint(120, 200) for _ in range(3))
        draw.line(points, fill=colour, width=2)
    font = ImageFont.load_default(size=30)
    x = 10
    for char in text:
        glyph = Image.new("RGBA", (36, 44), (0, 0, 0, 0))
        colour = (rng.randint(10, 90), rng.randint(10, 90), rng.randint(60, 140), 255)
        ImageDraw.Draw(glyph).text((4, 2), char, font=font, fill=colour)
        glyph = glyph.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BICUBIC)
        image.paste(glyph, (x, rng.randint(2, 10)), glyph)
        x += 28
    for _ in range(120):
        draw.point((rng.randrange(width), rng.randrange(height)), fill=(90, 90, 90))
    image = image.filter(ImageFilter.SMOOTH)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
