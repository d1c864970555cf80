"""Vault primitives and what the associated data buys: a ciphertext opens only in the
row and tenant it was sealed for (`pytest -k vault`)."""

from __future__ import annotations

import pytest

from overture.platform import crypto
from overture.platform.config import load_settings
from overture.platform.crypto import (
    DecryptionFailed,
    KeyUnavailable,
    LocalKeyWrapper,
    load_keyring,
    open_sealed,
    parse_keyring,
    seal,
)
from overture.platform.errors import ConfigError
from tests.vault_support import make_credential, master_entry, superuser, use

KEY = crypto.new_key()
AAD = b"tenant|record|1"


def flip_bit(sealed: str, byte_from_end: int, bit: int = 0) -> str:
    prefix, _, payload = sealed.partition(":")
    raw = bytearray(crypto.b64decode(payload))
    raw[len(raw) - byte_from_end] ^= 1 << bit
    return f"{prefix}:{crypto.b64encode(bytes(raw))}"


def test_vault_seal_round_trips_with_a_version_prefix_and_fresh_nonces():
    first, second = seal(KEY, b"s3cret", AAD), seal(KEY, b"s3cret", AAD)
    assert first.startswith("v1:") and second.startswith("v1:")
    assert first != second  # a fresh random nonce every time
    assert b"s3cret" not in crypto.b64decode(first[3:])
    assert open_sealed(KEY, first, AAD) == open_sealed(KEY, second, AAD) == b"s3cret"


@pytest.mark.parametrize("byte_from_end", [1, 8, 16])  # inside the 16-byte GCM tag
@pytest.mark.parametrize("bit", [0, 7])
def test_vault_a_flipped_tag_bit_fails(byte_from_end, bit):
    sealed = seal(KEY, b"s3cret", AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, flip_bit(sealed, byte_from_end, bit), AAD)


def test_vault_a_flipped_ciphertext_or_nonce_bit_fails():
    sealed = seal(KEY, b"a longer secret value", AAD)
    body_len = len(crypto.b64decode(sealed[3:]))
    for position in (17, body_len):  # last ciphertext byte, first nonce byte
        with pytest.raises(DecryptionFailed):
            open_sealed(KEY, flip_bit(sealed, position), AAD)


def test_vault_wrong_key_wrong_aad_and_bad_formats_fail():
    sealed = seal(KEY, b"s3cret", AAD)
    for key, aad in ((crypto.new_key(), AAD), (KEY, b"tenant|record|2"), (KEY, b"")):
        with pytest.raises(DecryptionFailed):
            open_sealed(key, sealed, aad)
    for bad in ("v2:" + sealed[3:], sealed[3:], "v1:", "v1:!!!", "v1:" + "A" * 10, ""):
        with pytest.raises(DecryptionFailed):
            open_sealed(KEY, bad, AAD)


def test_vault_keyring_first_key_is_primary_and_old_keys_still_unwrap():
    old = parse_keyring(master_entry("k1"), "test")
    wrapped_kid, wrapped = LocalKeyWrapper(old).wrap(b"data key", AAD)
    assert wrapped_kid == "k1"
    both = parse_keyring(f"{master_entry('k2')}, {old.keys[0].kid}:"
                         f"{crypto.b64encode(old.keys[0].key)}", "test")
    wrapper = LocalKeyWrapper(both)
    assert wrapper.primary_kid == "k2" and both.kids == ["k2", "k1"]
    assert wrapper.unwrap("k1", wrapped, AAD) == b"data key"
    assert wrapper.wrap(b"data key", AAD)[0] == "k2"
    with pytest.raises(KeyUnavailable, match="'k9' is missing"):
        wrapper.unwrap("k9", wrapped, AAD)


def test_vault_keyring_file_form_one_key_per_line(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# newest first\n{master_entry('2026-b')}\n{master_entry('2026-a')}\n")
    settings = load_settings({"OVERTURE_ENV": "production", "SECRET_KEY": "x" * 40,
                              "DATABASE_URL": "postgresql://app@db/overture",
                              "OVERTURE_MASTER_KEY_FILE": str(path)})
    assert load_keyring(settings).kids == ["2026-b", "2026-a"]


@pytest.mark.parametrize("text, message", [
    ("", "holds no master key"),
    ("no-colon-here", "entry 1 must read kid:base64url-key"),
    ("bad kid!:AAAA", "entry 1 must read kid:base64url-key"),
    ("k1:c2hvcnQtYnV0LXNlY3JldA", "'k1' must be 32 random bytes"),
    ("k1:***not-base64***", "'k1' must be 32 random bytes"),
])
def test_vault_malformed_keyrings_are_refused_without_echoing_key_material(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_keyring(text, "OVERTURE_MASTER_KEY")
    secret_part = text.partition(":")[2]
    if len(secret_part) > 3:
        assert secret_part not in str(info.value)


def test_vault_duplicate_kids_are_refused():
    with pytest.raises(ConfigError, match="'k1' is listed twice"):
        parse_keyring(f"{master_entry('k1')},{master_entry('k1')}", "test")


def test_vault_production_needs_a_master_key_and_development_generates_one(tmp_path):
    production = {"OVERTURE_ENV": "production", "SECRET_KEY": "x" * 40,
                  "DATABASE_URL": "postgresql://app@db/overture",
                  "OVERTURE_INSTANCE_PATH": str(tmp_path / "prod")}
    with pytest.raises(ConfigError, match="OVERTURE_MASTER_KEY"):
        load_keyring(load_settings(production))
    assert not (tmp_path / "prod" / "master_key").exists()

    dev = {"OVERTURE_ENV": "development", "OVERTURE_INSTANCE_PATH": str(tmp_path / "dev")}
    first = load_keyring(load_settings(dev))
    assert (tmp_path / "dev" / "master_key").stat().st_mode & 0o077 == 0
    assert load_keyring(load_settings(dev)) == first  # restarts keep the key

    both = dev | {"OVERTURE_MASTER_KEY": master_entry("k1"),
                  "OVERTURE_MASTER_KEY_FILE": str(tmp_path / "dev" / "master_key")}
    with pytest.raises(ConfigError, match="not both"):
        load_keyring(load_settings(both))
    missing = dev | {"OVERTURE_MASTER_KEY_FILE": str(tmp_path / "nope")}
    with pytest.raises(ConfigError, match="cannot read the master key file"):
        load_keyring(load_settings(missing))


# --------------------------------------------------------------------------- in the database


def copy_column(database, column, source_id, target_id, table="credentials"):
    with superuser(database) as conn:
        conn.execute(f"UPDATE {table} SET {column} = (SELECT {column} FROM {table} "
                     "WHERE id = %s) WHERE id = %s", (source_id, target_id))


def test_vault_ciphertext_copied_into_another_credentials_row_fails(world, database):
    mine = make_credential(world, "a", fields={"api_key": "value-one"})
    other = make_credential(world, "a", fields={"api_key": "value-two"})
    assert use(world, "a", mine.id)["api_key"] == "value-one"
    copy_column(database, "sealed", other.id, mine.id)
    with pytest.raises(DecryptionFailed):
        use(world, "a", mine.id)
    assert use(world, "a", other.id)["api_key"] == "value-two"


def test_vault_ciphertext_copied_into_another_tenants_row_fails(world, database):
    a_cred = make_credential(world, "a", fields={"api_key": "a-value"})
    b_cred = make_credential(world, "b", fields={"api_key": "b-value"})
    assert use(world, "a", a_cred.id)["api_key"] == "a-value"
    # Same key version (1) on both sides: only the associated data tells them apart.
    assert a_cred.key_version == b_cred.key_version == 1
    copy_column(database, "sealed", b_cred.id, a_cred.id)
    with pytest.raises(DecryptionFailed):
        use(world, "a", a_cred.id)


def test_vault_data_key_copied_into_another_tenant_fails(world, database):
    a_cred = make_credential(world, "a", fields={"api_key": "a-value"})
    make_credential(world, "b")
    with superuser(database) as conn:
        conn.execute("UPDATE tenant_keys SET wrapped_key = (SELECT wrapped_key FROM tenant_keys "
                     "WHERE tenant_id = %s) WHERE tenant_id = %s",
                     (world.tenants["b"].id, world.tenants["a"].id))
    with pytest.raises(DecryptionFailed):
        use(world, "a", a_cred.id)


def test_vault_tampered_stored_ciphertext_fails(world, database):
    cred = make_credential(world, "a", fields={"api_key": "value"})
    with superuser(database) as conn:
        (sealed,) = conn.execute("SELECT sealed FROM credentials WHERE id = %s",
                                 (cred.id,)).fetchone()
        conn.execute("UPDATE credentials SET sealed = %s WHERE id = %s",
                     (flip_bit(sealed, 1), cred.id))
    with pytest.raises(DecryptionFailed):
        use(world, "a", cred.id)
