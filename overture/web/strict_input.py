"""Every way input reaches a view goes through the platform's one JSON parser and one
text rule (platform/jsonbody.py, platform/validation.py):

- JSON bodies: APIFlask's `@input` (webargs' `json` and `json_or_form` locations) and
  `request.get_json()` (the app's JSON provider) both parse with `jsonbody.loads`, so
  NaN, 1e400, a 5,000-digit
  number, 1,000 levels of nesting or a `\\u0000` answer 400/422, never 500;
- form fields, query parameters and header values are held to the text rule as the
  request meets them, and a path that breaks it names no resource (404): a NUL in a
  webhook token or an Idempotency-Key reached PostgreSQL before;
- bodies over `jsonbody.MAX_BODY_BYTES` answer 413 (Flask's MAX_CONTENT_LENGTH, also for
  chunked bodies, which the server terminates), as a problem document.

API schema fields get the text rule and integer ranges from web/api/schemas.py `Strict`.
"""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask
from apiflask.schema_adapters.marshmallow import parser as apiflask_parser
from flask import Request, Response, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema
from webargs import core as webargs_core
from werkzeug.exceptions import RequestEntityTooLarge

from overture.platform import jsonbody
from overture.platform.errors import NotFound, OvertureError, ValidationFailed
from overture.platform.validation import text_problem
from overture.web import problems


class StrictJSONProvider(DefaultJSONProvider):
    """Flask reads `request.get_json()` (and `flask.json.loads`) through the app's JSON
    provider: this one reads with the strict parser; writing is unchanged."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:  # a caller asking for its own decoding options (none in Overture)
            return super().loads(s, **kwargs)
        return jsonbody.loads(s)


class StrictRequest(Request):
    """Flask's request: the strict parser's errors are the answer, form fields are
    held to the text rule."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, OvertureError):
            raise e  # already a 400/422 problem that says what is wrong
        return super().on_json_loading_failed(e)

    def _load_form_data(self) -> None:
        super()._load_form_data()
        for key, value in self.form.items(multi=True):
            problem = text_problem(key) or text_problem(value, multiline=True)
            if problem is not None:
                # Nobody may read the refused fields later in this request.
                self.__dict__["form"] = self.parameter_storage_class()
                raise ValidationFailed.field(f"form.{_printable(key)}", problem)


def install(app: APIFlask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = jsonbody.MAX_BODY_BYTES
    app.json = StrictJSONProvider(app)
    app.request_class = StrictRequest
    # webargs' documented hook for how a location is read; the parser is APIFlask's one
    # instance, so every `@input` body of every blueprint reads JSON through this.
    apiflask_parser.location_loader("json")(_json_location)
    apiflask_parser.location_loader("json_or_form")(_json_or_form_location)
    app.before_request(_check_request_line)
    app.register_error_handler(RequestEntityTooLarge, _too_large)


def _json_location(req: Request, schema: Schema) -> Any:
    if not webargs_core.is_json(req.mimetype):
        return webargs_core.missing
    data = req.get_data(cache=True)
    if not data:
        return webargs_core.missing  # as webargs: no body, so the schema's defaults apply
    return jsonbody.loads(data)


def _json_or_form_location(req: Request, schema: Schema) -> Any:
    if webargs_core.is_json(req.mimetype):
        return _json_location(req, schema)
    return apiflask_parser.load_form(req, schema)


def _check_request_line() -> None:
    """The path is one line of text; query and header values are text that may hold a
    tab or a line break (RFC 9110 allows a tab in a header; a `next` URL may carry one,
    and is made safe where it is used). Fields that must be one line say so in their
    schema (`Strict`)."""
    if (problem := text_problem(request.path)) is not None:
        # No resource is named that way: as for any other malformed id in a path.
        raise NotFound(f"no such resource: the path {problem}")
    for key, value in request.args.items(multi=True):
        if (problem := text_problem(key) or text_problem(value, multiline=True)) is not None:
            raise ValidationFailed.field(f"query.{_printable(key)}", problem)
    for name, value in request.headers.items():
        if (problem := text_problem(value, multiline=True)) is not None:
            raise ValidationFailed.field(f"headers.{_printable(name)}", problem)


def _too_large(err: RequestEntityTooLarge) -> Response:
    return problems.problem(413, "payload-too-large", "Payload too large",
                            f"the request body is over the limit of "
                            f"{jsonbody.MAX_BODY_BYTES:,} bytes")


def _printable(name: str) -> str:
    """A field name fit to quote back, whatever characters the caller put in it."""
    return name.encode("unicode_escape").decode("ascii")[:80]
