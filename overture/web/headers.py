"""The security headers every response carries, set in one place.

The Content-Security-Policy allows scripts, styles, fonts and fetches from this origin
only, and no inline script or style: pages keep their code in static files
(overture/web/static/), so an injected `<script>` or `style=` attribute does nothing.
The one exception is the brand's custom properties (web/brand_pages.py): a page that
shows them allows exactly that text, by its SHA-256, and nothing else inline.
It is sent with every answer (HTML pages, error pages, JSON), so no page, whichever
blueprint serves it, is left without it. The same policy serves the visual builder
(React, built into the static folder) and htmx, which load from this origin too.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response

STYLE_SRC = "style-src 'self'"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    STYLE_SRC,
    "img-src 'self' data:",  # Swagger UI's icons are data: URLs
    "font-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
])

# Powerful browser features no page of ours uses: denied to it and to any frame.
DENIED_FEATURES = ("accelerometer", "autoplay", "camera", "display-capture", "geolocation",
                   "gyroscope", "magnetometer", "microphone", "midi", "payment",
                   "publickey-credentials-get", "screen-wake-lock", "serial", "usb",
                   "xr-spatial-tracking")

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": ", ".join(f"{feature}=()" for feature in DENIED_FEATURES),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def secure(response: Response, style_hashes: Iterable[str] = ()) -> Response:
    """Add the security headers a view did not set itself; `style_hashes` are the
    CSP hashes (`'sha256-...'`) of the inline styles this page may hold."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    hashes = " ".join(sorted(style_hashes))
    if hashes and response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            STYLE_SRC, f"{STYLE_SRC} {hashes}", 1)
    return response
