"""Message content as parts: text, and images for vision models (zhipu-api-2026 §3).

A suite writes parts the readable way (a plain text item, ``{image: photos/cat.jpg}`` for a
file beside the suite, ``{image_url: https://...}``) or in the API's own form; the planner sends
the API's form, ``{type: text, text}`` and ``{type: image_url, image_url: {url}}``, with a file
embedded as a ``data:`` URL so a run never depends on where the suite was checked out. The
parts are one pydantic type: it validates what a suite wrote (:func:`check_content`) and gives
``glmeval schema`` its JSON Schema (:func:`content_json_schema`).

What the API would refuse is caught before anything is spent: an image sent to a model the
catalogue says reads text only (400/1210), and a user message with images and no text (400/1213).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, with_config
from pydantic_core import ErrorDetails
from typing_extensions import NotRequired, TypedDict

from glmeval.catalogue.models import in_display_order, lookup
from glmeval.checks.args import got
from glmeval.hints import did_you_mean
from glmeval.suite.problems import PathProblem

__all__ = [
    "IMAGE_TYPES",
    "ContentProblem",
    "ImageFiles",
    "check_content",
    "content_json_schema",
    "has_media",
    "image_type",
    "part_templates",
    "static_images",
    "text_only_model",
    "vision_models",
    "wire_content",
]

_OBJECT = ConfigDict(strict=True, extra="forbid")
_PASS_ON = ConfigDict(strict=True, extra="allow")

IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
"""Image files a suite may embed, by extension, and the mime type of their data URL."""


class ContentProblem(Exception):
    """An image part that cannot be sent (a missing file, an unknown type); ``str()`` says why."""


# --------------------------------------------------------------------------------------------
# The parts.


@with_config(_OBJECT)
class TextPart(TypedDict):
    """Text; ``type: text`` may be left out. A Jinja2 template like a text content."""

    type: NotRequired[Literal["text"]]
    text: Annotated[str, Field(description="The text (a Jinja2 template).")]


@with_config(_OBJECT)
class ImageFilePart(TypedDict):
    """An image file beside the suite, sent embedded as base64."""

    image: Annotated[
        str,
        Field(min_length=1, description="Path of a png, jpeg, gif, webp or bmp file, relative to the suite (may be a template)."),
    ]


@with_config(_OBJECT)
class ImageLinkPart(TypedDict):
    """An image by URL."""

    image_url: Annotated[str, Field(min_length=1, description="URL of the image (https://..., or a data: URL).")]


@with_config(_PASS_ON)
class MediaUrl(TypedDict):
    """Where the media is; other keys are sent as written."""

    url: Annotated[str, Field(min_length=1, description="https://..., a data: URL, or base64.")]


@with_config(_OBJECT)
class ImageUrlPart(TypedDict):
    """An image in the API's own form."""

    type: Literal["image_url"]
    image_url: MediaUrl


@with_config(_OBJECT)
class VideoUrlPart(TypedDict):
    """A video for the models that take one (part name unconfirmed; sent as written)."""

    type: Literal["video_url"]
    video_url: MediaUrl


@with_config(_OBJECT)
class FileUrlPart(TypedDict):
    """A file for the models that take one (part name unconfirmed; sent as written)."""

    type: Literal["file_url"]
    file_url: MediaUrl


_WIRE_TYPES = ("text", "image_url", "video_url", "file_url")
_MEDIA_TYPES = ("image_url", "video_url", "file_url")
_SHAPES = "text, {type: text, text: ...}, {image: file}, {image_url: URL} or {type: image_url, image_url: {url: ...}}"


def _part_kind(part: Any) -> str | None:
    """Which part a value is written as; None when it is none of them."""
    if isinstance(part, str):
        return "plain"
    if not isinstance(part, dict):
        return None
    if "type" in part:
        kind = part["type"]
        return kind if isinstance(kind, str) and kind in _WIRE_TYPES else None
    for key, kind in (("image", "image"), ("image_url", "image_link"), ("text", "text")):
        if key in part:
            return kind
    return None


Part = Annotated[
    Annotated[str, Tag("plain")]
    | Annotated[TextPart, Tag("text")]
    | Annotated[ImageFilePart, Tag("image")]
    | Annotated[ImageLinkPart, Tag("image_link")]
    | Annotated[ImageUrlPart, Tag("image_url")]
    | Annotated[VideoUrlPart, Tag("video_url")]
    | Annotated[FileUrlPart, Tag("file_url")],
    Discriminator(_part_kind),
]
Content = Annotated[
    list[Part],
    Field(
        min_length=1,
        description="Parts for vision models: text (plain, or {type: text, text}), {image: file beside the suite}, "
        "{image_url: URL}, or the API's {type: image_url, image_url: {url}}.",
    ),
]
_PARTS: TypeAdapter[Any] = TypeAdapter(Content)
_KEYS: dict[str, tuple[str, ...]] = {
    "text": tuple(get_type_hints(TextPart)),
    "image": tuple(get_type_hints(ImageFilePart)),
    "image_link": tuple(get_type_hints(ImageLinkPart)),
    "image_url": tuple(get_type_hints(ImageUrlPart)),
    "video_url": tuple(get_type_hints(VideoUrlPart)),
    "file_url": tuple(get_type_hints(FileUrlPart)),
}
_WHAT: dict[str, str] = {
    "text": "text",
    "image": "the path of an image file beside the suite",
    "image_url": "a URL, or in the API's form a mapping {url: ...}",
    "video_url": "a mapping {url: ...}",
    "file_url": "a mapping {url: ...}",
    "url": "a URL",
}


def content_json_schema() -> dict[str, Any]:
    """The JSON Schema of a message content: text, or a list of parts (definitions inline)."""
    parts = _PARTS.json_schema(ref_template="#/$defs/{model}")
    defs = parts.pop("$defs", {})
    return {"anyOf": [{"type": "string"}, parts, {"type": "null"}], "$defs": defs}


def check_content(content: Any, role: Any = None) -> list[PathProblem]:
    """Problems with a message's parts, each with its path inside the content (text content
    and anything that is not a list are the message model's business)."""
    if not isinstance(content, list):
        return []
    try:
        _PARTS.validate_python(content)
    except ValidationError as exc:
        return list(dict.fromkeys(_part_problem(content, err) for err in exc.errors()))
    if role == "user" and has_media(content) and not any(_part_kind(p) in ("plain", "text") for p in content):
        return [((), "a user message with an image needs a text part too (the API answers 400/1213 without one)")]
    return []


def _part_problem(content: list[Any], err: ErrorDetails) -> PathProblem:
    loc = err["loc"]
    if not loc:
        return ((), "content must have at least one part" if err["type"] == "too_short" else f"content must be text or a list of parts; {got(content)}")
    j = int(loc[0])
    part = content[j]
    name = f"content part {j + 1}"
    if len(loc) == 1:
        if isinstance(part, dict) and "type" in part:
            return ((j, "type"), f"{name}: type must be one of {', '.join(_WIRE_TYPES)}; {got(part['type'])}{did_you_mean(part['type'], _WIRE_TYPES)}")
        hint = did_you_mean(next(iter(part)), ("type", "text", "image", "image_url")) if isinstance(part, dict) and part else ""
        return ((j,), f"{name} must be {_SHAPES}; {got(part)}{hint}")
    kind = str(loc[1])
    rest = loc[2:]
    if not rest:
        return ((j,), f"{name} must be {_SHAPES}; {got(part)}")
    key = err["input"] if err["type"] == "invalid_key" else rest[0]
    if err["type"] in ("extra_forbidden", "invalid_key"):
        return ((j, key), f"unknown key {str(key)!r} in {name}{did_you_mean(key, _KEYS.get(kind, ()))}")
    if err["type"] == "missing":
        needed = rest[-1]
        return ((j, *rest[:-1]) if len(rest) > 1 else (j,), f"{name} needs {needed}: {_WHAT.get(str(needed), 'a value')}")
    value: Any = part
    for step in rest:
        value = value.get(step) if isinstance(value, dict) else None
    what = _WHAT.get(str(rest[-1]), "a value")
    if err["type"] == "too_short":
        return ((j, *rest), f"{name}: {rest[-1]} must not be empty")
    if kind == "image_url" and rest == ("image_url",) and isinstance(value, str):
        return ((j, *rest), f"{name}: with type: image_url, image_url is a mapping {{url: ...}}; or write {{image_url: URL}} without type")
    return ((j, *rest), f"{name}: {rest[-1]} must be {what}; {got(value)}")


# --------------------------------------------------------------------------------------------
# What a conversation sends.


def has_media(content: Any) -> bool:
    """Whether a content holds an image (or another medium a text-only model rejects)."""
    if not isinstance(content, list):
        return False
    return any(_part_kind(p) in ("image", "image_link", *_MEDIA_TYPES) for p in content)


def part_templates(content: Any) -> list[str]:
    """The strings of a content that render as templates: text, image paths and URLs."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for part in content if isinstance(content, list) else []:
        kind = _part_kind(part)
        if kind == "plain":
            out.append(part)
            continue
        value = part.get(_TEMPLATED.get(str(kind), "")) if kind else None
        if kind in _MEDIA_TYPES and isinstance(value, dict):
            value = value.get("url")
        if isinstance(value, str):
            out.append(value)
    return out


_TEMPLATED = {"text": "text", "image": "image", "image_link": "image_url", **{kind: kind for kind in _MEDIA_TYPES}}


def static_images(content: Any, templated: bool, is_template: Callable[[str], bool]) -> list[tuple[int, str]]:
    """The image files a content names that do not depend on case variables: (part index, path)."""
    out: list[tuple[int, str]] = []
    for j, part in enumerate(content if isinstance(content, list) else []):
        if _part_kind(part) == "image" and isinstance(part.get("image"), str) and part["image"]:
            if not (templated and is_template(part["image"])):
                out.append((j, part["image"]))
    return out


def image_type(path: str) -> str | None:
    """The mime type an image file is sent as, by its extension; None when it is not one."""
    return IMAGE_TYPES.get(Path(path).suffix.lower())


class ImageFiles:
    """Image files beside a suite, each read once and kept as its data URL."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._urls: dict[Path, str] = {}

    def problem(self, written: str) -> str | None:
        """Why the file cannot be sent, or None (without reading it: loading stays quick)."""
        try:
            self._path(written)
            path = self.base_dir / written
            if not path.exists():
                raise ContentProblem(_not_found(written, path))
            if path.is_dir():
                raise ContentProblem(f"image {written!r} is a directory, expected an image file")
            if path.stat().st_size == 0:
                raise ContentProblem(f"image file {written!r} is empty")
        except ContentProblem as exc:
            return str(exc)
        except (OSError, ValueError) as exc:
            return f"image file {written!r} cannot be read ({getattr(exc, 'strerror', None) or exc})"
        return None

    def _path(self, written: str) -> tuple[Path, str]:
        mime = image_type(written)
        if mime is None:
            kinds = ", ".join(dict.fromkeys(ext.lstrip(".") for ext in IMAGE_TYPES))
            raise ContentProblem(f"image {written!r} is not an image file glmeval can embed ({kinds})")
        return self.base_dir / written, mime

    def data_url(self, written: str) -> str:
        """``data:image/png;base64,...`` for the file ``written`` names (relative to the suite)."""
        path, mime = self._path(written)
        if path not in self._urls:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise ContentProblem(_not_found(written, path)) from None
            except IsADirectoryError:
                raise ContentProblem(f"image {written!r} is a directory, expected an image file") from None
            except (OSError, ValueError) as exc:
                raise ContentProblem(f"image file {written!r} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
            if not data:
                raise ContentProblem(f"image file {written!r} is empty")
            self._urls[path] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return self._urls[path]


def _not_found(written: str, path: Path) -> str:
    return f"image file {written!r} not found (looked for {path})"


def wire_content(content: Sequence[Any], render: Callable[[str], str], images: ImageFiles) -> list[Any]:
    """The parts as the API takes them, templates rendered with ``render`` and image files
    embedded. Raises ContentProblem for an image file that cannot be sent (and lets the
    renderer's own exception through)."""
    out: list[Any] = []
    for part in content:
        kind = _part_kind(part)
        if kind == "plain":
            out.append({"type": "text", "text": render(part)})
        elif kind == "text" and isinstance(part.get("text"), str):
            out.append({**part, "type": "text", "text": render(part["text"])})
        elif kind == "image" and isinstance(part.get("image"), str):
            out.append({"type": "image_url", "image_url": {"url": images.data_url(render(part["image"]))}})
        elif kind == "image_link" and isinstance(part.get("image_url"), str):
            out.append({"type": "image_url", "image_url": {"url": render(part["image_url"])}})
        elif kind in _MEDIA_TYPES and isinstance(part.get(kind), dict) and isinstance(part[kind].get("url"), str):
            out.append({**part, kind: {**part[kind], "url": render(part[kind]["url"])}})
        else:
            out.append(part)
    return out


# --------------------------------------------------------------------------------------------
# Which models take images.


def vision_models() -> list[str]:
    """The current vision models of the catalogue (those not marked legacy), newest first."""
    return [info.name for info in in_display_order() if info.kind == "chat" and info.modality == "vision" and info.status != "legacy"]


def text_only_model(model: str) -> bool:
    """True when the catalogue knows the model and says it reads text only (an unknown model
    may take images: the API decides)."""
    info = lookup(model)
    return info is not None and info.kind == "chat" and info.modality == "text"
