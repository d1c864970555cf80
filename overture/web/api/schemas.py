"""Request and response shapes of API v1 (marshmallow, through apiflask)."""

from __future__ import annotations

import re

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import RAISE, ValidationError
from marshmallow.fields import Field, Mapping, Tuple
from marshmallow.validate import Validator

from overture.platform.validation import LINE_PATTERN, MULTILINE_PATTERN, text_problem
from overture.tenants.credentials import KINDS as CREDENTIAL_KINDS
from overture.tenants.roles import PERMISSIONS, Role

ROLES = [r.value for r in Role]
INT32_MAX = 2**31 - 1  # what a PostgreSQL `integer` column holds
INT32 = Range(-(2**31), INT32_MAX)


class Multiline(String):
    """Text that may span lines (descriptions, notes, messages): tab, line feed and
    carriage return are allowed, other control characters are not."""


class TextRule(Validator):
    """platform/validation.py's text rule as a field validator; `regex` is what apispec
    writes as the field's `pattern` in the OpenAPI document."""

    def __init__(self, multiline: bool) -> None:
        self.multiline = multiline
        self.regex = re.compile(MULTILINE_PATTERN if multiline else LINE_PATTERN)

    def __call__(self, value: str) -> str:
        if (problem := text_problem(value, self.multiline)) is not None:
            raise ValidationError(problem)
        return value


def guard_field(field: Field) -> None:
    """Hold a field, and the fields inside it, to the text rule and integer range."""
    todo = [field]
    while todo:
        current = todo.pop()
        # A new list each time: marshmallow's field copies share their validators list.
        if isinstance(current, String) and not isinstance(current, UUID):
            current.validators = [*current.validators, TextRule(isinstance(current, Multiline))]
        elif isinstance(current, Integer) and not _within_int32(current):
            current.validators = [*current.validators, INT32]  # Ranges intersect, in the doc too
        elif isinstance(current, List):
            todo.append(current.inner)
        elif isinstance(current, Mapping):
            todo += [f for f in (current.key_field, current.value_field) if f is not None]
        elif isinstance(current, Tuple):
            todo += current.tuple_fields


def _within_int32(field: Integer) -> bool:
    return any(isinstance(v, Range) and v.min is not None and v.max is not None
               and INT32.min <= v.min and v.max <= INT32_MAX for v in field.validators)


class Strict(Schema):
    """The base of every request schema (body and query): unknown fields are refused,
    every string obeys the one text rule (a NUL or a control character in a name is
    a 422 naming the field), every integer fits an `integer` column."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: Field) -> None:
        guard_field(field_obj)


class PageQuery(Strict):
    cursor = String(load_default=None,
                    metadata={"description": "`next_cursor` of the previous page"})
    limit = Integer(load_default=50, validate=Range(1, 200))


class TenantQuery(PageQuery):
    status = String(load_default=None, validate=OneOf(["active", "suspended"]))


class TenantOut(Schema):
    id = UUID()
    kind = String()
    name = String()
    slug = String()
    parent_id = UUID(allow_none=True)
    status = String()
    created_at = DateTime()
    suspended_at = DateTime(allow_none=True)
    mfa_required = Boolean(metadata={"description": "staff (every role but `member`) must "
                                                    "use two-factor authentication"})


class TenantWithRole(TenantOut):
    role = String()


class TenantPage(Schema):
    items = List(Nested(TenantOut))
    next_cursor = String(allow_none=True)


class TenantCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    slug = String(load_default=None, validate=Length(1, 64))
    kind = String(load_default="workspace", validate=OneOf(["workspace", "agency"]))
    owner_email = String(load_default=None, validate=Length(3, 254),
                         metadata={"description": "agencies only: invite this first owner"})


class TenantUpdate(Strict):
    name = String(required=True, validate=Length(1, 120))


class OwnTenantUpdate(Strict):
    """The tenant acted in: its name and its settings; each field is optional."""

    name = String(validate=Length(1, 120))
    mfa_required = Boolean(metadata={"description": "require two-factor authentication of "
                                                    "staff (every role but `member`)"})


class UserOut(Schema):
    id = UUID()
    email = String()
    name = String()
    status = String()
    is_platform_admin = Boolean()


class MeOut(Schema):
    user = Nested(UserOut)
    auth = String(metadata={"description": "`session` or `api_key`"})
    tenants = List(Nested(TenantWithRole))


class MemberOut(Schema):
    id = UUID()
    tenant_id = UUID()
    role = String()
    user = Nested(UserOut)
    created_at = DateTime()


class MemberPage(Schema):
    items = List(Nested(MemberOut))
    next_cursor = String(allow_none=True)


class MemberInvite(Strict):
    email = String(required=True, validate=Length(3, 254))
    role = String(required=True, validate=OneOf(ROLES))
    name = String(load_default="", validate=Length(0, 120))


class MemberUpdate(Strict):
    role = String(required=True, validate=OneOf(ROLES))


class ApiKeyOut(Schema):
    id = UUID()
    tenant_id = UUID()
    name = String()
    prefix = String()
    scopes = List(String())
    created_by_id = UUID()
    created_at = DateTime()
    expires_at = DateTime(allow_none=True)
    last_used_at = DateTime(allow_none=True)
    revoked_at = DateTime(allow_none=True)


class ApiKeyCreated(ApiKeyOut):
    token = String(metadata={"description": "the key itself: shown this once, never again"})


class ApiKeyPage(Schema):
    items = List(Nested(ApiKeyOut))
    next_cursor = String(allow_none=True)


class ApiKeyCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    scopes = List(String(validate=OneOf(list(PERMISSIONS))), load_default=None,
                  metadata={"description": "permissions; default: all of yours"})
    expires_at = DateTime(load_default=None)


def fields_of(obj: object, schema: type[Schema], **extra: object) -> dict[str, object]:
    """The attributes a schema will dump, plus extras: for responses that add a field."""
    return {name: getattr(obj, name) for name in schema().fields if name not in extra} | extra


class AuditQuery(PageQuery):
    actor = String(load_default=None, metadata={"description": "actor id (user or API key)"})
    action = String(load_default=None, validate=Length(1, 80),
                    metadata={"description": "action prefix, e.g. `member.` or `auth.login`"})
    target_type = String(load_default=None, validate=Length(1, 40))
    target_id = String(load_default=None, validate=Length(1, 64))
    since = DateTime(load_default=None, metadata={"description": "inclusive, ISO 8601"})
    until = DateTime(load_default=None, metadata={"description": "exclusive, ISO 8601"})


class AuditExportQuery(AuditQuery):
    format = String(load_default="jsonl", validate=OneOf(["jsonl", "csv"]))


class AuditEventOut(Schema):
    id = UUID()
    tenant_id = UUID()
    seq = Integer()
    occurred_at = DateTime()
    actor_type = String()
    actor_id = String(allow_none=True)
    actor_label = String(allow_none=True)
    action = String()
    target_type = String(allow_none=True)
    target_id = String(allow_none=True)
    request_id = String(allow_none=True)
    ip = String(allow_none=True)
    user_agent = String(allow_none=True)
    details = Dict()
    prev_hash = String()
    hash = String()


class AuditPage(Schema):
    items = List(Nested(AuditEventOut))
    next_cursor = String(allow_none=True)


class ChainReportOut(Schema):
    ok = Boolean()
    events = Integer()
    broken_seq = Integer(allow_none=True)
    reason = String(allow_none=True)
    sealed_seq = Integer(allow_none=True)
    sealed_at = String(allow_none=True)


# --------------------------------------------------------------------------- credentials


class CredentialOut(Schema):
    """A credential as every read shows it: secret values are always the placeholder."""

    id = UUID()
    tenant_id = UUID()
    name = String()
    kind = String()
    connector_key = String(allow_none=True)
    fields = Dict(attribute="masked_fields",
                  metadata={"description": "every field; secret values read `********`"})
    secret_fields = List(String(), metadata={"description": "the fields that are sealed"})
    key_version = Integer(metadata={"description": "the tenant data key version sealing it"})
    created_by_id = UUID(allow_none=True)
    updated_by_id = UUID(allow_none=True)
    rotated_by_id = UUID(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime(allow_none=True)
    rotated_at = DateTime(allow_none=True)
    last_used_at = DateTime(allow_none=True)


class CredentialPage(Schema):
    items = List(Nested(CredentialOut))
    next_cursor = String(allow_none=True)


class CredentialQuery(PageQuery):
    kind = String(load_default=None, validate=OneOf(CREDENTIAL_KINDS))
    connector_key = String(load_default=None, validate=Length(1, 80))


class CredentialCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    kind = String(required=True, validate=OneOf(CREDENTIAL_KINDS),
                  metadata={"description": "api_key (seals api_key), basic (password), oauth2 "
                                           "(access_token, refresh_token, client_secret) or "
                                           "custom (seals the fields in secret_fields)"})
    connector_key = String(load_default=None, allow_none=True, validate=Length(1, 80))
    fields = Dict(keys=String(), required=True,
                  metadata={"description": "field name to value, secret and public alike"})
    secret_fields = List(String(), load_default=None,
                         metadata={"description": "custom credentials: the fields to seal"})


class CredentialUpdate(Strict):
    name = String(validate=Length(1, 120))
    connector_key = String(allow_none=True, validate=Length(1, 80))
    fields = Dict(keys=String(), load_default=None,
                  metadata={"description": "a merge patch: values replace, null removes a "
                                           "field, `********` keeps the stored secret"})
    secret_fields = List(String(), load_default=None,
                         metadata={"description": "custom credentials: the fields to seal "
                                                  "(a secret field never becomes public)"})
