"""Request and response shapes of custom domains (API v1)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, List, Nested, String
from apiflask.validators import Length

from overture.web.api.schemas import Strict


class DnsRecord(Schema):
    type = String(metadata={"description": "always `TXT`"})
    name = String(metadata={"description": "the record's full name: `<label>.<domain>`"})
    value = String(metadata={"description": "what the record must hold, exactly"})


class DomainOut(Schema):
    id = UUID()
    tenant_id = UUID()
    hostname = String(metadata={"description": "the ASCII (punycode) form, lower case"})
    display_name = String(metadata={"description": "as people write it (Unicode)"})
    status = String(metadata={"description": "`pending` until the record is found, then "
                                             "`verified`: only a verified domain is served"})
    record = Nested(DnsRecord, metadata={"description": "the TXT record that proves the "
                                                        "domain"})
    verified_at = DateTime(allow_none=True)
    last_checked_at = DateTime(allow_none=True)
    last_check_error = String(allow_none=True, metadata={
        "description": "what the last check found wrong; null after a successful one"})
    created_at = DateTime()


class DomainCheck(Schema):
    ok = Boolean(metadata={"description": "the record was found and the domain is verified"})
    message = String(metadata={"description": "what the check found, for a person"})


class DomainChecked(DomainOut):
    check = Nested(DomainCheck)


class DomainPage(Schema):
    items = List(Nested(DomainOut))
    next_cursor = String(allow_none=True)


class DomainCreate(Strict):
    hostname = String(required=True, validate=Length(1, 300), metadata={
        "description": "a host name such as `portal.example.com` (Unicode names are "
                       "accepted and stored as punycode)", "example": "portal.example.com"})
