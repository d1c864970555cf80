"""Uploaded brand images: checked, decoded and re-encoded with Pillow before storage.

Accepted: PNG, JPEG and WebP, at most MAX_BYTES, within the pixel limits of LIMITS.
SVG is refused (it is a document that can carry script), as is anything Pillow does
not decode as one of the three formats, whatever the file is named or claims to be.
The pixel size is read from the header and checked before any pixel is decoded, so a
small file that would inflate to gigabytes (a decompression bomb) is refused unread.
The stored image is a new one holding only the decoded pixels of the first frame:
metadata (EXIF, comments, colour profiles, text chunks) and trailing bytes are gone.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from overture.platform.errors import ValidationFailed

MAX_BYTES = 1024 * 1024
FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"),
           "WEBP": ("webp", "image/webp")}
CONTENT_TYPES = {ext: content_type for ext, content_type in FORMATS.values()}


@dataclass(frozen=True)
class Limits:
    min_side: int
    max_width: int
    max_height: int
    square: bool = False

    def describe(self) -> str:
        shape = "square, " if self.square else ""
        return (f"{shape}{self.min_side} to {self.max_width} pixels wide and "
                f"{self.min_side} to {self.max_height} pixels high")


# A logo is drawn at most 40 pixels high (80 on a 2x screen); 2048x1024 leaves room for
# any sensible source while keeping a decoded logo under 8 MiB of memory.
LIMITS = {
    "logo": Limits(16, 2048, 1024),
    "logo_dark": Limits(16, 2048, 1024),
    "favicon": Limits(16, 512, 512, square=True),
}
KINDS = tuple(LIMITS)


@dataclass(frozen=True)
class CleanImage:
    kind: str
    data: bytes
    ext: str
    content_type: str
    width: int
    height: int

    @property
    def name(self) -> str:
        """`<kind>-<hash>.<ext>`: a new image is a new name, so its URL can be cached
        for ever."""
        return f"{self.kind}-{hashlib.sha256(self.data).hexdigest()[:16]}.{self.ext}"


def refuse(message: str) -> ValidationFailed:
    return ValidationFailed.field("file", message)


def read_limited(stream: io.BufferedIOBase | object) -> bytes:
    """At most MAX_BYTES + 1 bytes of an upload: enough to know it is too large."""
    data = stream.read(MAX_BYTES + 1)  # type: ignore[attr-defined]
    return bytes(data or b"")


def clean(kind: str, data: bytes) -> CleanImage:
    """The upload as a new, metadata-free image of the same format; ValidationFailed
    (field `file`) saying what is wrong otherwise."""
    limits = LIMITS[kind]
    if not data:
        raise refuse("is empty: choose a PNG, JPEG or WebP image")
    if len(data) > MAX_BYTES:
        raise refuse(f"is larger than {MAX_BYTES // 1024 // 1024} MB: make it smaller "
                     "(a logo rarely needs more than 100 KB)")
    if _looks_like_svg(data):
        raise refuse("is an SVG image, which can carry script: upload a PNG, JPEG or WebP")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data), formats=list(FORMATS))
            fmt = source.format or ""
            _check_size(source.size, limits)  # before a single pixel is decoded
            source.seek(0)  # an animation keeps its first frame only
            source.load()
            upright = ImageOps.exif_transpose(source)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard, at opening: the header claims hundreds of megapixels.
        raise refuse(f"claims a size far beyond the limit: it must be {limits.describe()}"
                     ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise refuse("is not a readable PNG, JPEG or WebP image") from exc
    _check_size(upright.size, limits)
    ext, content_type = FORMATS[fmt]
    return CleanImage(kind, _reencode(upright, fmt), ext, content_type, *upright.size)


def _looks_like_svg(data: bytes) -> bool:
    head = data[:2048].lstrip().lower()
    return head.startswith(b"<?xml") or b"<svg" in head


def _check_size(size: tuple[int, int], limits: Limits) -> None:
    width, height = size
    fits = (limits.min_side <= width <= limits.max_width
            and limits.min_side <= height <= limits.max_height)
    if not fits or (limits.square and width != height):
        raise refuse(f"is {width}x{height} pixels: it must be {limits.describe()}")


def _reencode(image: Image.Image, fmt: str) -> bytes:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if has_alpha and fmt != "JPEG" else "RGB"
    # A new image holding only the pixels: nothing of the source's info travels along.
    fresh = Image.new(mode, image.size)
    fresh.paste(image.convert(mode))
    out = io.BytesIO()
    if fmt == "PNG":
        fresh.save(out, "PNG", optimize=True)
    elif fmt == "JPEG":
        fresh.save(out, "JPEG", quality=90, optimize=True)
    else:
        fresh.save(out, "WEBP", quality=90, method=4)
    return out.getvalue()
