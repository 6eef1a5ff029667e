"""Image parts: what the local server reads from them, and how a vision model describes them.

A vision model must answer from the image itself, deterministically, so a suite can check it
(a red picture gets an answer naming red). The server decodes embedded images with Pillow
(``data:`` URLs and raw base64, which is what the zhipuai SDK leaves after stripping the
``data:`` prefix) and describes their size and dominant colour. An ``http(s)`` URL is never
downloaded: a simulator that fetched arbitrary URLs would make runs depend on the network, so
the answer says an image was seen at that URL.

Which requests are refused with which code (1210 for image parts to a text model, 1213 for a
vision message without text) is decided in :mod:`.protocol`; this module only reads parts.
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["IMAGE_TOKENS", "ImageError", "Picture", "describe", "is_text_part", "part_type", "read_picture"]

IMAGE_TOKENS = 1600
"""Prompt tokens one image costs. An estimate: no capture gives an image's token cost; 1,600 is
the visual-token count of the open GLM-4V model (1120×1120 input, 14 px patches, 2×2 merge)
[unconfirmed for the API]. Fixed per image, whatever its size, so an unfetched URL costs the same."""

_SAMPLE = 48  # the image is shrunk to at most this many pixels a side before counting colours

# Colour names (Chinese, English), in the order ties are broken.
_COLOURS: dict[str, tuple[str, str]] = {
    "red": ("红色", "red"),
    "orange": ("橙色", "orange"),
    "brown": ("棕色", "brown"),
    "yellow": ("黄色", "yellow"),
    "green": ("绿色", "green"),
    "cyan": ("青色", "cyan"),
    "blue": ("蓝色", "blue"),
    "purple": ("紫色", "purple"),
    "pink": ("粉色", "pink"),
    "white": ("白色", "white"),
    "grey": ("灰色", "grey"),
    "black": ("黑色", "black"),
}
_ORDER = {name: i for i, name in enumerate(_COLOURS)}


class ImageError(ValueError):
    """An image part the server cannot read (bad base64, not an image, no URL)."""


@dataclass(frozen=True, slots=True)
class Picture:
    """One image of a request: its pixel size and dominant colour, or the URL it was not fetched from."""

    width: int | None = None
    height: int | None = None
    colour: str | None = None
    url: str | None = None


def part_type(part: Any) -> str:
    """The ``type`` of a content part; a plain string item or a typeless ``{"text": ...}`` is text."""
    if isinstance(part, Mapping):
        kind = part.get("type")
        if kind is None and "text" in part:
            return "text"
        return str(kind)
    return "text" if isinstance(part, str) else "?"


def is_text_part(part: Any) -> bool:
    """A text part with some text in it (what a vision model's user message needs, or 1213)."""
    if isinstance(part, str):
        return bool(part.strip())
    if isinstance(part, Mapping) and part_type(part) == "text":
        text = part.get("text")
        return isinstance(text, str) and bool(text.strip())
    return False


def _url_of(part: Mapping[str, Any]) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, Mapping) else value
    if not isinstance(url, str) or not url.strip():
        raise ImageError("no image_url.url")
    return url.strip()


def _decode(text: str) -> bytes:
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or ";base64" not in header:
            raise ImageError("a data: URL that is not base64")
    cleaned = "".join(text.split())
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            raise ImageError("not base64") from None


def _colour_name(r: int, g: int, b: int) -> str:
    h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    if v < 0.18:
        return "black"
    if s < 0.15 or (s < 0.25 and v > 0.9):
        return "white" if v > 0.85 else "grey"
    degrees = h * 360
    if degrees < 15 or degrees >= 345:
        return "red"
    if degrees < 40:
        return "orange" if v >= 0.6 else "brown"
    if degrees < 70:
        return "yellow"
    if degrees < 165:
        return "green"
    if degrees < 195:
        return "cyan"
    if degrees < 255:
        return "blue"
    if degrees < 290:
        return "purple"
    return "pink"


def _measure(data: bytes) -> Picture:
    """Size and dominant colour (the most common named colour over a small nearest-neighbour copy)."""
    from PIL import Image  # only vision requests pay for importing Pillow

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            rgba = image.convert("RGBA")
    except Exception as exc:  # Pillow raises many kinds (UnidentifiedImageError, OSError, bomb errors)
        raise ImageError(f"not an image: {exc}") from None
    scale = min(1.0, _SAMPLE / max(width, height, 1))
    small = rgba.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.NEAREST)
    white = Image.new("RGBA", small.size, (255, 255, 255, 255))
    raw = Image.alpha_composite(white, small).convert("RGB").tobytes()
    counts = Counter(_colour_name(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3))
    colour = min(counts, key=lambda name: (-counts[name], _ORDER[name]))
    return Picture(width, height, colour)


def read_picture(part: Mapping[str, Any]) -> Picture:
    """The :class:`Picture` of an ``image_url`` part: decoded when embedded, its URL when remote."""
    url = _url_of(part)
    if url[:8].lower().startswith(("http://", "https://")):
        return Picture(url=url)
    return _measure(_decode(url))


def describe(pictures: Sequence[Picture], english: bool) -> str:
    """The vision model's answer: each picture's size and dominant colour, one sentence each.

    ``这是一张 64×48 的图片，主色调是红色。`` for one embedded picture; pictures are numbered
    when there are several; an unfetched URL is named as such.
    """
    sentences = [_sentence(p, english, i + 1 if len(pictures) > 1 else None) for i, p in enumerate(pictures)]
    return (" " if english else "").join(sentences)


def _sentence(picture: Picture, english: bool, number: int | None) -> str:
    if picture.url is not None:
        if english:
            lead = f"Image {number}" if number else "This"
            return f"{lead} is an image at {picture.url}; the local server did not download it, so it cannot describe it."
        lead = f"第{number}张是" if number else "这是"
        return f"{lead}一张来自 {picture.url} 的图片；本地服务器没有下载它，无法描述其内容。"
    zh, en = _COLOURS[picture.colour or "grey"]
    size = f"{picture.width}×{picture.height}"
    if english:
        lead = f"Image {number} is" if number else "This is"
        return f"{lead} a {size} image; its dominant colour is {en}."
    lead = f"第{number}张是" if number else "这是"
    return f"{lead}一张 {size} 的图片，主色调是{zh}。"
