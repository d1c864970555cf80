"""Swagger UI for API v1, served from the locally installed swagger-ui bundle (no CDN)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

bp = Blueprint("docs", __name__)
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
          "favicon-32x32.png"}


@bp.get("/api/v1/docs")
def swagger_ui() -> str:
    return render_template("swagger.html")


@bp.get("/api/v1/docs/assets/<name>")
def swagger_asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status=404)
    return send_from_directory(str(swagger_ui_path), name, max_age=86400)


def add_security(spec: dict[str, Any]) -> dict[str, Any]:
    """Every API operation takes an API key or a session unless it says otherwise."""
    spec["security"] = [{"ApiKey": []}, {"Session": []}]
    return spec
