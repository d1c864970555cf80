"""Images and calls the brand tests share."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, PngImagePlugin


def png(width: int = 200, height: int = 60, colour: tuple[int, ...] = (20, 90, 200, 255),
        text: dict[str, str] | None = None) -> bytes:
    """A PNG, optionally carrying text chunks (metadata a re-encode must drop)."""
    image = Image.new("RGBA", (width, height), colour)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_exif(width: int = 120, height: int = 40) -> bytes:
    image = Image.new("RGB", (width, height), (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc"  # Make
    exif[0x0131] = "secret-firmware 1.0"  # Software
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def noisy_png(min_bytes: int) -> bytes:
    """A real PNG of at least `min_bytes` (random pixels do not compress)."""
    import math
    import os

    side = math.ceil(math.sqrt(min_bytes * 1.02 / 3))
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    data = out.getvalue()
    assert len(data) >= min_bytes
    return data


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims a huge image: decoding it would take 40 GB."""
    data = bytearray(png(1, 1))
    ihdr = 8  # after the signature: length (4), "IHDR" (4), then width and height
    data[ihdr + 8:ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4:ihdr + 8 + 13])) & 0xFFFFFFFF
    data[ihdr + 8 + 13:ihdr + 8 + 17] = struct.pack(">I", crc)
    return bytes(data)


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>')


def upload(api: Any, kind: str, data: bytes, filename: str = "logo.png",
           content_type: str = "image/png") -> Any:
    return api.call("PUT", f"/brand/assets/{kind}",
                    data={"file": (io.BytesIO(data), filename, content_type)},
                    content_type="multipart/form-data")
