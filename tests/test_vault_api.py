"""Credentials through API v1: masked reads, placeholder updates, validation, permissions,
tenant isolation, audit, and no plaintext anywhere but the one way out
(`pytest -k vault`)."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from psycopg import sql
from sqlalchemy import select

from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.platform.logging import configure_logging
from overture.tenants.vault_models import PLACEHOLDER, Credential
from tests.support import as_key, as_user
from tests.vault_support import make_credential, plaintext, superuser, use


def create(api, **body):
    body.setdefault("name", "crm")
    return api.post("/credentials", json=body)


def fields_named(response) -> set[str]:
    return {e["field"] for e in response.get_json()["errors"]}


def events(world, tenant, prefix="credential."):
    with scoped_to(world.tenants[tenant].id):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                  .order_by(AuditEvent.seq)).all()
        return [(e.action, e.target_id, e.details) for e in rows]


@pytest.fixture(params=["session", "api_key"])
def a_admin(request, app, world):
    if request.param == "session":
        return as_user(app, world, "a_admin")
    return as_key(app, world, "a_admin")


def test_vault_create_and_read_are_masked(a_admin, world):
    secret = plaintext()
    r = create(a_admin, kind="api_key", connector_key="hubspot",
               fields={"api_key": secret, "account": "acme-eu"})
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert created["fields"] == {"api_key": PLACEHOLDER, "account": "acme-eu"}
    assert created["secret_fields"] == ["api_key"]
    assert created["kind"] == "api_key" and created["connector_key"] == "hubspot"
    assert created["tenant_id"] == world.tid("a")
    assert created["created_by_id"] == str(world.users["a_admin"].id)
    one = a_admin.get(f"/credentials/{created['id']}")
    listing = a_admin.get("/credentials")
    assert one.status_code == listing.status_code == 200
    assert one.get_json()["fields"] == created["fields"]
    assert [c["id"] for c in listing.get_json()["items"]] == [created["id"]]
    for response in (r, one, listing):
        assert secret not in response.get_data(as_text=True)
    # ... and the value is really in the vault.
    assert use(world, "a", created["id"]) == {"api_key": secret, "account": "acme-eu"}


def test_vault_each_kind_seals_only_its_secret_fields(app, world):
    api = as_key(app, world, "a_admin")
    cases = [
        ("basic", {"username": "bot@acme", "password": plaintext()}, None, ["password"]),
        ("oauth2", {"client_id": "cid", "client_secret": plaintext(),
                    "access_token": plaintext(), "refresh_token": plaintext(),
                    "scope": "crm.read"}, None,
         ["access_token", "client_secret", "refresh_token"]),
        ("custom", {"host": "db.acme", "port": 5432, "token": plaintext(), "pin": plaintext()},
         ["token", "pin"], ["pin", "token"]),
    ]
    for kind, fields, secret_fields, sealed in cases:
        r = create(api, name=f"{kind}-cred", kind=kind, fields=fields,
                   secret_fields=secret_fields)
        assert r.status_code == 201, (kind, r.get_json())
        body = r.get_json()
        assert body["secret_fields"] == sealed
        public = {k: v for k, v in fields.items() if k not in sealed}
        assert body["fields"] == public | dict.fromkeys(sealed, PLACEHOLDER)
        for name in sealed:
            assert fields[name] not in r.get_data(as_text=True)
        assert use(world, "a", body["id"]) == fields
    kinds = {c["kind"] for c in api.get("/credentials", query_string={"kind": "basic"})
             .get_json()["items"]}
    assert kinds == {"basic"}


def test_vault_placeholder_on_update_keeps_the_stored_secret(a_admin, world):
    username, password = "svc@acme", plaintext()
    created = create(a_admin, kind="basic",
                     fields={"username": username, "password": password}).get_json()
    masked = a_admin.get(f"/credentials/{created['id']}").get_json()["fields"]
    assert masked == {"username": username, "password": PLACEHOLDER}
    # The masked form sent back with one public change: the password survives.
    r = a_admin.patch(f"/credentials/{created['id']}",
                      json={"fields": masked | {"username": "new@acme"}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["fields"] == {"username": "new@acme", "password": PLACEHOLDER}
    assert body["rotated_at"] is None and body["updated_at"] is not None
    assert use(world, "a", created["id"]) == {"username": "new@acme", "password": password}
    # A new value replaces it, and counts as a rotation of the secret.
    fresh = plaintext()
    r = a_admin.patch(f"/credentials/{created['id']}", json={"fields": {"password": fresh}})
    assert r.status_code == 200
    assert r.get_json()["rotated_at"] is not None
    assert r.get_json()["rotated_by_id"] == str(world.users["a_admin"].id)
    assert fresh not in r.get_data(as_text=True)
    assert use(world, "a", created["id"])["password"] == fresh


def test_vault_update_renames_removes_fields_and_never_declassifies(app, world):
    api = as_user(app, world, "a_builder")  # builders manage credentials
    token, pin = plaintext(), plaintext()
    created = create(api, kind="custom", fields={"host": "h", "token": token, "pin": pin},
                     secret_fields=["token", "pin"]).get_json()
    cid = created["id"]
    r = api.patch(f"/credentials/{cid}", json={"name": "renamed", "fields": {"pin": None}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["name"] == "renamed"
    assert r.get_json()["fields"] == {"host": "h", "token": PLACEHOLDER}
    assert use(world, "a", cid) == {"host": "h", "token": token}
    # Declaring a secret public again would hand its value to every reader.
    r = api.patch(f"/credentials/{cid}", json={"secret_fields": []})
    assert r.status_code == 422 and fields_named(r) == {"fields.token"}
    # A public field can be promoted to secret.
    r = api.patch(f"/credentials/{cid}", json={"secret_fields": ["token", "host"]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["fields"] == {"host": PLACEHOLDER, "token": PLACEHOLDER}
    assert use(world, "a", cid) == {"host": "h", "token": token}
    # The placeholder for a field that holds nothing is a mistake, not a value.
    r = api.patch(f"/credentials/{cid}", json={"fields": {"pin": PLACEHOLDER},
                                              "secret_fields": ["token", "host", "pin"]})
    assert r.status_code == 422 and fields_named(r) == {"fields.pin"}


def test_vault_delete_removes_the_credential(a_admin, world, database):
    created = create(a_admin, kind="api_key", fields={"api_key": plaintext()}).get_json()
    r = a_admin.delete(f"/credentials/{created['id']}")
    assert r.status_code == 204
    assert a_admin.get(f"/credentials/{created['id']}").status_code == 404
    with superuser(database) as conn:
        assert conn.execute("SELECT count(*) FROM credentials").fetchone()[0] == 0


@pytest.mark.parametrize("body, field", [
    ({"kind": "api_key", "fields": {}}, "fields.api_key"),
    ({"kind": "api_key", "fields": {"api_key": ""}}, "fields.api_key"),
    ({"kind": "api_key", "fields": {"api_key": 42}}, "fields.api_key"),
    ({"kind": "api_key", "fields": {"api_key": PLACEHOLDER}}, "fields.api_key"),
    ({"kind": "basic", "fields": {"password": "x"}}, "fields.username"),
    ({"kind": "oauth2", "fields": {"client_id": "only-public"}}, "fields"),
    ({"kind": "custom", "fields": {"token": "x"}}, "secret_fields"),
    ({"kind": "custom", "fields": {"a": "x"}, "secret_fields": ["b"]}, "fields.b"),
    ({"kind": "api_key", "fields": {"api_key": "x"}, "secret_fields": ["other"]},
     "secret_fields"),
    ({"kind": "api_key", "fields": {"api_key": "x", "bad name": "y"}}, "fields"),
    ({"kind": "api_key", "fields": {"api_key": "x", "nested": {"a": 1}}}, "fields.nested"),
    ({"kind": "telepathy", "fields": {"api_key": "x"}}, "kind"),
    ({"kind": "api_key", "fields": {"api_key": "x"}, "name": ""}, "name"),
    ({"kind": "api_key", "fields": {"api_key": "x"}, "name": "n" * 121}, "name"),
    ({"kind": "api_key"}, "fields"),
    ({"kind": "api_key", "fields": {"api_key": "x"}, "connector_key": "has space"},
     "connector_key"),
    ({"kind": "api_key", "fields": {"api_key": "x"}, "surprise": 1}, "surprise"),
])
def test_vault_validation_errors_name_the_field(app, world, body, field):
    api = as_key(app, world, "a_admin")
    r = create(api, **body)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert field in fields_named(r), r.get_json()
    assert api.get("/credentials").get_json()["items"] == []


def test_vault_names_are_unique_per_tenant(app, world):
    a, b = as_key(app, world, "a_admin"), as_key(app, world, "b_admin")
    assert create(a, kind="api_key", fields={"api_key": "x"}).status_code == 201
    assert create(a, kind="api_key", fields={"api_key": "y"}).status_code == 409
    assert create(b, kind="api_key", fields={"api_key": "z"}).status_code == 201


def test_vault_list_pages_with_a_cursor(app, world):
    api = as_key(app, world, "a_admin")
    ids = [create(api, name=f"c{i}", kind="api_key", fields={"api_key": plaintext()})
           .get_json()["id"] for i in range(5)]
    first = api.get("/credentials", query_string={"limit": 2}).get_json()
    second = api.get("/credentials", query_string={"limit": 2,
                                                  "cursor": first["next_cursor"]}).get_json()
    third = api.get("/credentials", query_string={"limit": 2,
                                                 "cursor": second["next_cursor"]}).get_json()
    seen = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert seen == ids and third["next_cursor"] is None


def test_vault_permissions_viewer_cannot_read_or_create_operator_only_reads(app, world):
    make_credential(world, "a", name="existing")
    viewer, operator = as_user(app, world, "a_viewer"), as_user(app, world, "a_operator")
    body = {"kind": "api_key", "fields": {"api_key": "x"}}
    assert create(viewer, **body).status_code == 403
    assert viewer.get("/credentials").status_code == 403
    assert operator.get("/credentials").status_code == 200
    assert create(operator, **body).status_code == 403
    readonly = as_key(app, world, "a_readonly")  # a key without credential scopes
    assert readonly.get("/credentials").status_code == 403
    existing = operator.get("/credentials").get_json()["items"][0]["id"]
    assert operator.patch(f"/credentials/{existing}",
                          json={"name": "taken over"}).status_code == 403
    assert operator.delete(f"/credentials/{existing}").status_code == 403
    assert as_user(app, world, "a_admin").get(f"/credentials/{existing}") \
        .get_json()["name"] == "existing"


def test_vault_cross_tenant_credentials_are_not_found(a_admin, app, world):
    b_secret = plaintext()
    b_cred = make_credential(world, "b", name="b-only-credential", fields={"api_key": b_secret})
    path = f"/credentials/{b_cred.id}"
    attempts = [("GET", None), ("PATCH", {"name": "pwned", "fields": {"api_key": "mine"}}),
                ("DELETE", None)]
    for method, body in attempts:
        r = a_admin.call(method, path, json=body)
        assert r.status_code == 404, (method, r.get_json())
        assert "b-only-credential" not in r.get_data(as_text=True)
    listing = a_admin.get("/credentials")
    assert listing.status_code == 200 and listing.get_json()["items"] == []
    # Naming B in the header does not get A's admin in either.
    assert a_admin.get(path, tenant=world.tid("b")).status_code == 404
    r = a_admin.post("/credentials", tenant=world.tid("b"),
                     json={"name": "planted", "kind": "api_key", "fields": {"api_key": "x"}})
    assert r.status_code == 404
    # B's credential is untouched.
    b = as_key(app, world, "b_admin")
    assert b.get(path).get_json()["name"] == "b-only-credential"
    assert [c["name"] for c in b.get("/credentials").get_json()["items"]] == [
        "b-only-credential"]
    assert use(world, "b", b_cred.id) == {"api_key": b_secret}


def test_vault_audit_events_name_fields_never_values(app, world):
    api = as_key(app, world, "a_admin")
    secret, fresh = plaintext(), plaintext()
    cid = create(api, kind="basic", fields={"username": "u", "password": secret}) \
        .get_json()["id"]
    api.patch(f"/credentials/{cid}", json={"fields": {"password": fresh}})
    assert use(world, "a", cid, purpose="connector:crm.sync") == {"username": "u",
                                                                   "password": fresh}
    api.delete(f"/credentials/{cid}")
    logged = events(world, "a")
    assert [(action, target) for action, target, _ in logged] == [
        ("credential.created", cid), ("credential.updated", cid), ("credential.used", cid),
        ("credential.deleted", cid)]
    created, updated, used, _ = (details for _, _, details in logged)
    assert created["secret_fields"] == ["password"] and created["fields"] == ["username"]
    assert updated["secrets_replaced"] == ["password"]
    assert used["purpose"] == "connector:crm.sync"
    dumped = json.dumps(logged)
    assert secret not in dumped and fresh not in dumped
    assert events(world, "b") == []


def test_vault_use_records_last_used(world):
    cred = make_credential(world, "a")
    assert cred.last_used_at is None
    use(world, "a", cred.id, purpose="model call")
    with scoped_to(world.tenants["a"].id):
        stored = db.session.scalars(select(Credential).where(Credential.id == cred.id)
                                    .execution_options(populate_existing=True)).one()
        assert stored.last_used_at is not None
    with pytest.raises(ValueError):
        use(world, "a", cred.id, purpose=" ")


# --------------------------------------------------------------------------- no plaintext


@pytest.fixture
def every_log_line(settings, caplog):
    """Every log line, at DEBUG, SQL statements and their parameters included."""
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    engine_log = logging.getLogger("sqlalchemy.engine")
    engine_log.setLevel(logging.INFO)
    caplog.set_level(logging.DEBUG)
    yield lambda: stream.getvalue() + caplog.text
    engine_log.setLevel(logging.WARNING)
    configure_logging(settings.log_level, stream=sys.stdout)


TEXT_TYPES = ("text", "character varying", "character", "bytea", "json", "jsonb")


def dump_text_columns(database) -> dict[str, list[str]]:
    """Every text, bytea and JSON value in the database, read as the superuser (no RLS)."""
    out: dict[str, list[str]] = {}
    with superuser(database) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(%s)",
            (list(TEXT_TYPES),)).fetchall()
        for table, column in columns:
            query = sql.SQL("SELECT {}::text FROM {} WHERE {} IS NOT NULL").format(
                sql.Identifier(column), sql.Identifier(table), sql.Identifier(column))
            out[f"{table}.{column}"] = [row[0] for row in conn.execute(query)]
    return out


def test_vault_no_plaintext_in_the_database_or_the_logs(app, world, database, every_log_line):
    session, key = as_user(app, world, "a_admin"), as_key(app, world, "a_admin")
    secrets = []

    def secret():
        secrets.append(plaintext())
        return secrets[-1]

    ids = [
        create(session, name="k", kind="api_key", fields={"api_key": secret()}),
        create(key, name="b", kind="basic", fields={"username": "visible-user",
                                                     "password": secret()}),
        create(key, name="o", kind="oauth2", fields={"access_token": secret(),
                                                      "refresh_token": secret(),
                                                      "client_secret": secret()}),
        create(session, name="c", kind="custom", fields={"token": secret(), "zone": "eu"},
               secret_fields=["token"]),
    ]
    assert all(r.status_code == 201 for r in ids), [r.get_json() for r in ids]
    ids = [r.get_json()["id"] for r in ids]
    r = key.patch(f"/credentials/{ids[1]}", json={"fields": {"password": secret()}})
    assert r.status_code == 200
    # A refused update and a use are logged too; neither may carry a value.
    assert key.patch(f"/credentials/{ids[0]}",
                     json={"fields": {"api_key": 7, "x": secret()}}).status_code == 422
    assert use(world, "a", ids[3])["token"] == secrets[5]

    dump = dump_text_columns(database)
    assert "visible-user" in "".join(dump["credentials.public"])  # the dump sees the rows
    assert len(dump["credentials.sealed"]) == 4
    logs = every_log_line()
    assert '"event": "request"' in logs and "INSERT INTO credentials" in logs
    for value in secrets:
        for column, values in dump.items():
            assert not any(value in v for v in values), f"{column} holds a plaintext secret"
        assert value not in logs, "a plaintext secret reached the logs"
