"""QR codes rendered locally as SVG.

The provisioning URI contains the TOTP secret, so it must never be sent to a third-party
QR image service; segno is pure Python and writes SVG we can inline in a page.
"""

from __future__ import annotations

import io

import segno


def qr_svg(data: str) -> str:
    """An SVG document for `data`, medium error correction (readable off a laptop screen)."""
    buffer = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buffer, kind="svg", scale=4, border=4)
    return buffer.getvalue().decode("utf-8")
