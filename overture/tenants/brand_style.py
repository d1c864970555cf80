"""What a brand may look like: colours (validated, WCAG contrast), the bundled fonts, and
the CSS custom properties a page gets (`brand_css`), built from validated values only.

The pages' fixed colours live in the stylesheet (web/static/app.css); the ones a brand
colour is drawn against are repeated here, so the contrast check tests the pairs a
person will really read. A change to those colours in the stylesheet changes them here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEX = re.compile(r"^#[0-9a-f]{6}$")
WHITE = "#ffffff"
BLACK = "#000000"
INK = "#1b2130"  # --ink: body text, and button text on a light primary
PAGE_BACKGROUND = "#f5f6f8"  # --bg
SIDEBAR = "#141a26"  # --side: the console's navigation

# WCAG 2.1 AA: 4.5:1 for text (SC 1.4.3), 3:1 for a mark that is not text (SC 1.4.11).
TEXT_RATIO = 4.5
MARK_RATIO = 3.0


@dataclass(frozen=True)
class Font:
    key: str
    label: str
    family: str  # the CSS font-family value (@font-face rules in the stylesheet)


SYSTEM_STACK = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
FONTS: dict[str, Font] = {f.key: f for f in (
    Font("system", "System (the device's own)", SYSTEM_STACK),
    Font("fira-sans", "Fira Sans", f'"Fira Sans", {SYSTEM_STACK}'),
    Font("open-sans", "Open Sans", f'"Open Sans", {SYSTEM_STACK}'),
    Font("source-serif-4", "Source Serif 4", '"Source Serif 4", Georgia, "Times New Roman", serif'),
)}


def parse_colour(value: str) -> str | None:
    """`#rrggbb` in lower case, or None when `value` is not one."""
    value = value.strip().lower()
    return value if HEX.match(value) else None


def _channel(c: int) -> float:
    s = c / 255
    return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of `#rrggbb`."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(background: str) -> str:
    """The first of white, the page's ink and black that reads on `background` (AA).
    One always does: white or black reaches at least 4.58:1 on any colour."""
    for ink in (WHITE, INK, BLACK):
        if contrast(ink, background) >= TEXT_RATIO:
            return ink
    return max((WHITE, BLACK), key=lambda ink: contrast(ink, background))


@dataclass(frozen=True)
class Pair:
    """A foreground drawn on a background somewhere in the UI, and the ratio it needs."""

    field: str
    description: str
    foreground: str
    background: str
    needed: float
    # What each colour is, for a page that recomputes the pair as the colour changes:
    # "primary", "accent", "on-primary", "on-accent", or the fixed colour itself.
    roles: tuple[str, str] = ("", "")

    @property
    def ratio(self) -> float:
        return contrast(self.foreground, self.background)

    def problem(self) -> str | None:
        ratio = self.ratio
        if ratio >= self.needed:
            return None
        # Rounded down: a ratio shown as 4.5 must really pass.
        shown = int(ratio * 100) / 100
        kind = "text" if self.needed == TEXT_RATIO else "a mark that is not text"
        return (f"{self.description} ({self.foreground} on {self.background}) has a contrast "
                f"ratio of {shown:.2f}:1; WCAG AA needs {self.needed:g}:1 for {kind}")


def pairs(primary: str | None = None, accent: str | None = None) -> list[Pair]:
    """The pairs each colour takes part in: primary for links and buttons, accent for
    the marks in the dark navigation and the logo tile."""
    found = []
    if primary is not None:
        found += [
            Pair("primary", "primary-coloured links on white", primary, WHITE, TEXT_RATIO,
                 ("primary", WHITE)),
            Pair("primary", "primary-coloured links on the page background", primary,
                 PAGE_BACKGROUND, TEXT_RATIO, ("primary", PAGE_BACKGROUND)),
            Pair("primary", "button text on the primary colour", readable_on(primary), primary,
                 TEXT_RATIO, ("on-primary", "primary")),
        ]
    if accent is not None:
        found += [
            Pair("accent", "the accent marking the current page in the navigation", accent,
                 SIDEBAR, MARK_RATIO, ("accent", SIDEBAR)),
            Pair("accent", "the initial on the accent-coloured logo tile", readable_on(accent),
                 accent, TEXT_RATIO, ("on-accent", "accent")),
        ]
    return found


def contrast_problems(primary: str | None, accent: str | None) -> dict[str, str]:
    """field -> the first pair it fails, said with the pair and its ratio."""
    problems: dict[str, str] = {}
    for pair in pairs(primary, accent):
        if pair.field not in problems and (message := pair.problem()) is not None:
            problems[pair.field] = message
    return problems


def brand_css(primary: str, accent: str, font_key: str) -> str:
    """The custom properties a page's <style> holds. Only validated values reach it: a
    colour matching HEX and a font from FONTS, so no tenant text is ever CSS."""
    if not (HEX.match(primary) and HEX.match(accent)) or font_key not in FONTS:
        raise ValueError("brand_css takes validated values only")
    return (f":root{{--brand-primary:{primary};--brand-accent:{accent};"
            f"--brand-font:{FONTS[font_key].family};"
            f"--brand-on-primary:{readable_on(primary)};"
            f"--brand-on-accent:{readable_on(accent)}}}")
