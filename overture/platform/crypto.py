"""Encryption primitives for the vault: master keyring, key wrapping, AES-256-GCM sealing.

Primitives only: nothing here knows about tenants or credentials (`tenants.vault`
builds envelope encryption from these pieces).

* A master key is `kid:base64url(32 bytes)`. `OVERTURE_MASTER_KEY` holds one or more,
  comma-separated; `OVERTURE_MASTER_KEY_FILE` holds one per line. The FIRST is the
  primary (wraps new data keys); the others only unwrap, so a new primary can be added
  in front and the old one removed after `overture keys rotate-master`.
* Every stored ciphertext reads `v1:` + base64url(nonce || ciphertext || tag), so a
  later format can be told apart from this one without guessing.
* Wrapping sits behind `KeyWrapper` so a KMS or a customer's own key (BYOK) can
  replace `LocalKeyWrapper` without the vault changing.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from overture.platform.config import Settings
from overture.platform.errors import ConfigError, OvertureError

FORMAT_VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit nonces, random per seal: GCM's recommended size
KID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
INSTANCE_KEY_FILE = "master_key"


class DecryptionFailed(OvertureError):
    """A ciphertext did not open: wrong key, wrong associated data, or tampered.

    Deliberately says nothing more: which of those it was is no business of the caller.
    """

    code = "decryption-failed"
    title = "Decryption failed"


class KeyUnavailable(ConfigError):
    """Data was wrapped under a master key this process does not hold."""


# --------------------------------------------------------------------------- encoding


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


# --------------------------------------------------------------------------- sealing


def seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    """AES-256-GCM under `key`, bound to `aad`; a fresh random nonce every time."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = AESGCM(key).encrypt(nonce, plaintext, aad)
    return f"{FORMAT_VERSION}:{b64encode(nonce + body)}"


def open_sealed(key: bytes, sealed: str, aad: bytes) -> bytes:
    """The plaintext of `seal(key, plaintext, aad)`, or DecryptionFailed."""
    version, _, payload = (sealed or "").partition(":")
    if version != FORMAT_VERSION:
        raise DecryptionFailed("unknown ciphertext format")
    try:
        raw = b64decode(payload)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionFailed("malformed ciphertext") from exc
    if len(raw) < NONCE_BYTES + 16:
        raise DecryptionFailed("malformed ciphertext")
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise DecryptionFailed() from exc


# --------------------------------------------------------------------------- keyring


@dataclass(frozen=True)
class MasterKey:
    kid: str
    key: bytes = field(repr=False)  # never in a repr, a log line or a traceback


@dataclass(frozen=True)
class Keyring:
    keys: tuple[MasterKey, ...]
    source: str  # where the keys came from, for error messages

    @property
    def primary(self) -> MasterKey:
        return self.keys[0]

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self.keys]

    def get(self, kid: str) -> MasterKey:
        for key in self.keys:
            if key.kid == kid:
                return key
        raise KeyUnavailable(f"master key '{kid}' is missing: data is wrapped under it; "
                             f"add it to {self.source} (present: {', '.join(self.kids)})")


def parse_keyring(text: str, source: str, what: str = "master key") -> Keyring:
    """`kid:key` entries separated by commas or newlines; the first is the primary.

    Errors name the entry's position and kid (and `what` the keys are), never the key
    material.
    """
    entries = [e.strip() for e in re.split(r"[,\n]", text or "")]
    entries = [e for e in entries if e and not e.startswith("#")]
    if not entries:
        raise ConfigError(f"{source} holds no {what} (expected kid:base64url-key)")
    keys: list[MasterKey] = []
    for n, entry in enumerate(entries, 1):
        kid, sep, encoded = entry.partition(":")
        kid = kid.strip()
        if not sep or not KID_RE.match(kid):
            raise ConfigError(f"{source}: entry {n} must read kid:base64url-key, with a kid of "
                              "letters, digits, '.', '_' or '-'")
        try:
            key = b64decode(encoded.strip())
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{source}: {what} '{kid}' must be {KEY_BYTES} random bytes, "
                              "base64url-encoded")
        if kid in (k.kid for k in keys):
            raise ConfigError(f"{source}: {what} '{kid}' is listed twice")
        keys.append(MasterKey(kid, key))
    return Keyring(tuple(keys), source)


def format_entry(kid: str, key: bytes) -> str:
    return f"{kid}:{b64encode(key)}"


def _instance_keyring_file(instance: Path) -> Path:
    """The development master key, created once (atomically: parallel processes,
    such as test runs sharing an instance folder, must all end up with the same key)."""
    path = instance / INSTANCE_KEY_FILE
    if path.exists():
        return path
    instance.mkdir(parents=True, exist_ok=True)
    draft = instance / f".{INSTANCE_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(format_entry(f"local-{secrets.token_hex(4)}", new_key()) + "\n")
    try:
        os.link(draft, path)  # appears complete or not at all; never overwrites
    except FileExistsError:
        pass  # another process won the race: everyone uses its key
    finally:
        draft.unlink()
    return path


def load_keyring(settings: Settings) -> Keyring:
    """The master keyring the settings point at. Production must name one."""
    if settings.master_key and settings.master_key_file:
        raise ConfigError("set OVERTURE_MASTER_KEY or OVERTURE_MASTER_KEY_FILE, not both")
    if settings.master_key:
        return parse_keyring(settings.master_key, "OVERTURE_MASTER_KEY")
    path = settings.master_key_file
    if path is None:
        if settings.is_production:
            raise ConfigError(
                "the vault needs a master key in production: set OVERTURE_MASTER_KEY "
                "(kid:base64url-32-bytes, comma-separated, primary first) or "
                "OVERTURE_MASTER_KEY_FILE")
        path = _instance_keyring_file(settings.instance_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the master key file {path}: {exc.strerror}") from exc
    return parse_keyring(text, f"the master key file {path}")


# --------------------------------------------------------------------------- wrapping


class KeyWrapper(Protocol):
    """Wraps data keys under a master key. Local today; a KMS or BYOK key tomorrow."""

    @property
    def primary_kid(self) -> str: ...

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, str]:
        """(kid, wrapped) under the primary master key."""
        ...

    def unwrap(self, kid: str, wrapped: str, aad: bytes) -> bytes: ...

    def holds(self, kid: str) -> bool: ...


class LocalKeyWrapper:
    """Master keys held in this process (from the environment or a file)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @property
    def primary_kid(self) -> str:
        return self.keyring.primary.kid

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, str]:
        primary = self.keyring.primary
        return primary.kid, seal(primary.key, data_key, aad)

    def unwrap(self, kid: str, wrapped: str, aad: bytes) -> bytes:
        return open_sealed(self.keyring.get(kid).key, wrapped, aad)

    def holds(self, kid: str) -> bool:
        return kid in self.keyring.kids
