"""Request and response shapes of the brand endpoints (web/api/brand.py)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, File, List, Nested, String
from apiflask.validators import Length

from overture.web.api.schemas import Multiline, Strict

COLOUR = {"pattern": "^#[0-9a-fA-F]{6}$",
          "description": "`#rrggbb`; refused (422) when a pair the pages draw with it fails "
                         "WCAG AA contrast, with the pair and its ratio in the message"}
INHERIT = "null (or empty) clears it: the value is inherited again"


class BrandUpdate(Strict):
    """Any subset of the tenant's own brand fields; all are checked before any is kept."""

    product_name = String(allow_none=True, validate=Length(max=80),
                          metadata={"description": f"shown in titles, headers and mail; {INHERIT}"})
    primary = String(allow_none=True, validate=Length(max=7),
                     metadata={**COLOUR, "description": "links and buttons. " +
                               COLOUR["description"]})
    accent = String(allow_none=True, validate=Length(max=7),
                    metadata={**COLOUR, "description": "marks in the dark navigation and the "
                              "logo tile. " + COLOUR["description"]})
    font = String(allow_none=True, validate=Length(max=32),
                  metadata={"description": "a key of `fonts` (bundled fonts only)"})
    support_email = String(allow_none=True, validate=Length(max=254))
    support_url = String(allow_none=True, validate=Length(max=500),
                         metadata={"description": "an https:// (or http://) address"})
    legal_footer = Multiline(allow_none=True, validate=Length(max=1000),
                             metadata={"description": "plain text, shown under every page"})
    sender_name = String(allow_none=True, validate=Length(max=80),
                         metadata={"description": "the name mail is sent under"})
    clients_may_override = Boolean(metadata={
        "description": "agencies only: client workspaces may set their own brand, field by "
                       "field over the agency's"})
    white_label = Boolean(metadata={
        "description": "agencies only: nothing the agency's and its clients' people see "
                       "names the platform"})


class AssetUpload(Schema):
    file = File(required=True, metadata={
        "description": "PNG, JPEG or WebP, at most 1 MB (SVG refused); logos 16-2048 x "
                       "16-1024 pixels, favicons square, 16-512 pixels. Re-encoded: metadata "
                       "is dropped."})


class OwnBrandOut(Schema):
    product_name = String(allow_none=True)
    primary = String(allow_none=True)
    accent = String(allow_none=True)
    font = String(allow_none=True)
    support_email = String(allow_none=True)
    support_url = String(allow_none=True)
    legal_footer = String(allow_none=True)
    sender_name = String(allow_none=True)
    logo_url = String(allow_none=True)
    logo_dark_url = String(allow_none=True)
    favicon_url = String(allow_none=True)
    clients_may_override = Boolean(metadata={"description": "agencies only"})
    white_label = Boolean(metadata={"description": "agencies only"})


class EffectiveBrandOut(Schema):
    product_name = String()
    logo_url = String(allow_none=True)
    logo_dark_url = String(allow_none=True, metadata={"description": "for dark backgrounds"})
    favicon_url = String(allow_none=True)
    primary = String()
    accent = String()
    on_primary = String(metadata={"description": "the text colour on the primary colour"})
    on_accent = String()
    font = String()
    font_family = String(metadata={"description": "the CSS font-family"})
    support_email = String(allow_none=True)
    support_url = String(allow_none=True)
    legal_footer = String(allow_none=True)
    sender_name = String()
    white_label = Boolean()


class FontOut(Schema):
    key = String()
    label = String()


class BrandOut(Schema):
    tenant_id = UUID()
    kind = String()
    own = Nested(OwnBrandOut, metadata={"description": "what this tenant set (null: inherited)"})
    effective = Nested(EffectiveBrandOut, metadata={
        "description": "what its pages and mail show: the workspace's own fields (where its "
                       "agency allows them) over the agency's over the platform's"})
    editable = Boolean(metadata={"description": "whether this tenant's brand may be changed"})
    not_editable_because = String(allow_none=True)
    fonts = List(Nested(FontOut))
