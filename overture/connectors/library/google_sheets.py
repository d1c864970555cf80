"""Google Sheets: append rows and read ranges (Sheets API v4, OAuth2).

Ranges are A1 notation (`Sheet1!A1:D`, `'Q3 leads'!A:C`); they travel percent-encoded
in the path, as Google's own clients send them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from overture.connectors.context import ActionContext
from overture.connectors.spec import Action, Auth, Connector, obj

SPREADSHEET_ID = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{10,100}$",
                  "description": "the ID in the sheet's URL: /spreadsheets/d/<id>/edit"}
RANGE = {"type": "string", "minLength": 1, "maxLength": 500,
         "description": "A1 notation, e.g. Sheet1!A1:D or 'My sheet'!A:C"}
CELL = {"type": ["string", "number", "boolean", "null"]}


def _values_path(data: dict[str, Any], suffix: str = "") -> str:
    return (f"spreadsheets/{data['spreadsheet_id']}/values/"
            f"{quote(data['range'], safe='')}{suffix}")


def append_rows(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    params = {"valueInputOption": data.get("value_input_option", "USER_ENTERED"),
              "insertDataOption": data.get("insert_data_option", "INSERT_ROWS"),
              "includeValuesInResponse": "false"}
    body = {"range": data["range"], "majorDimension": "ROWS", "values": data["rows"]}
    done = ctx.client.request("POST", _values_path(data, ":append"), params=params,
                              json=body).json()
    updates = done.get("updates") or {}
    return {"spreadsheet_id": done.get("spreadsheetId", data["spreadsheet_id"]),
            "table_range": done.get("tableRange"),
            "updated_range": updates.get("updatedRange"),
            "updated_rows": updates.get("updatedRows", 0),
            "updated_cells": updates.get("updatedCells", 0)}


def read_rows(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    params = {"majorDimension": "ROWS",
              "valueRenderOption": data.get("value_render_option", "FORMATTED_VALUE")}
    got = ctx.client.request("GET", _values_path(data), params=params).json()
    return {"range": got.get("range"), "values": got.get("values", [])}  # omitted when empty


def check(ctx: ActionContext) -> str:
    # No spreadsheet is known yet, and Drive's `about` needs another scope. Google
    # checks the token first: a bad one gets 401, a good one 404 (or 400) for a
    # spreadsheet that does not exist.
    ctx.client.request("GET", "spreadsheets/overture-connection-check",
                       params={"fields": "spreadsheetId"}, ok=(400, 404))
    return "Google accepted the token"


CONNECTOR = Connector(
    key="google_sheets",
    name="Google Sheets",
    description="Append rows to a spreadsheet and read ranges from it.",
    icon="google-sheets",
    auth=Auth(kind="oauth2", authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
              token_url="https://oauth2.googleapis.com/token",  # noqa: S106 (a URL)
              scopes=("https://www.googleapis.com/auth/spreadsheets",),
              # a refresh token is only issued for offline access, and again on consent
              authorize_params=(("access_type", "offline"), ("prompt", "consent"),
                                ("include_granted_scopes", "true"))),
    base_url="https://sheets.googleapis.com/v4",
    docs_url="https://developers.google.com/sheets/api/reference/rest/v4/"
             "spreadsheets.values/append",
    test=check,
    actions=(
        Action(key="append_rows", name="Append rows",
               description="Add rows after the last row of the table found in the range "
                           "(values are parsed as if typed, so formulas and dates work).",
               input_schema=obj({
                   "spreadsheet_id": SPREADSHEET_ID, "range": RANGE,
                   "rows": {"type": "array", "minItems": 1, "maxItems": 10000,
                            "items": {"type": "array", "items": CELL},
                            "description": "rows of cell values"},
                   "value_input_option": {"enum": ["USER_ENTERED", "RAW"],
                                          "default": "USER_ENTERED"},
                   "insert_data_option": {"enum": ["INSERT_ROWS", "OVERWRITE"],
                                          "default": "INSERT_ROWS"},
               }, ["spreadsheet_id", "range", "rows"]),
               output_schema=obj({"spreadsheet_id": {"type": "string"},
                                  "table_range": {"type": ["string", "null"]},
                                  "updated_range": {"type": ["string", "null"]},
                                  "updated_rows": {"type": "integer"},
                                  "updated_cells": {"type": "integer"}}),
               run=append_rows, side_effects=True),
        Action(key="read_rows", name="Read rows",
               description="Read the values of a range, row by row (trailing empty cells "
                           "and rows are left out).",
               input_schema=obj({
                   "spreadsheet_id": SPREADSHEET_ID, "range": RANGE,
                   "value_render_option": {"enum": ["FORMATTED_VALUE", "UNFORMATTED_VALUE",
                                                    "FORMULA"],
                                           "default": "FORMATTED_VALUE"},
               }, ["spreadsheet_id", "range"]),
               output_schema=obj({"range": {"type": ["string", "null"]},
                                  "values": {"type": "array",
                                             "items": {"type": "array", "items": CELL}}}),
               run=read_rows),
    ),
)
