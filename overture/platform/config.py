"""Settings, read only from environment variables.

Every variable is declared once in `config_vars.VARIABLES`; the README table is
generated from it (`overture config`) and a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from overture.platform.config_vars import VARIABLES, markdown_table
from overture.platform.errors import ConfigError
from overture.platform.outbound import ALLOWLIST_ENV, parse_allowlist

__all__ = ["VARIABLES", "Settings", "load_settings", "markdown_table"]

DEFAULT_SECRET = "change-me"  # noqa: S105 - the placeholder we refuse in production

SMTP_SECURITY = ("none", "starttls", "tls")


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    database_url: str
    database_owner_url: str
    redis_url: str | None
    redis_namespace: str
    secret_key: str
    master_key: str | None
    master_key_file: Path | None
    host: str
    port: int
    public_url: str
    log_level: str
    login_rate_limit: str
    api_rate_limit: str
    session_cookie_secure: bool
    audit_key: str | None
    audit_checkpoint_path: Path
    audit_checkpoint_seconds: float
    auth_failure_rate_limit: str
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    session_idle_minutes: int = 120
    webhook_rate_per_minute: int = 15000
    webhook_rate_ceiling: int = 60000
    session_max_hours: int = 12
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "Overture <noreply@localhost>"
    dns_nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    dns_timeout_seconds: float = 5.0
    domain_txt_label: str = "_verify"
    payment_grace_days: int = 7
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    stripe_webhook_tolerance: int = 300
    stripe_timeout_seconds: float = 30.0
    stripe_max_retries: int = 2
    stripe_settle_minutes: int = 10
    metrics_token: str | None = None
    worker_metrics_port: int = 9191
    scheduler_metrics_port: int = 9192
    tracing_endpoint: str | None = None
    service_name: str = "overture"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def normalize_database_url(url: str) -> str:
    """psycopg 3 is our PostgreSQL driver whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _seconds(env_vars: dict[str, str], name: str, default: float) -> float:
    text = env_vars.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, not {text!r}")
    return value


def _instance_secret(instance: Path, name: str) -> str:
    """A development secret kept in the instance folder so restarts keep sessions."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _days(env_vars: dict[str, str], name: str, default: int) -> int:
    raw = env_vars.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number of days (0 or more), not {raw!r}")
    return int(raw)


def _positive_int(env_vars: dict[str, str], name: str, default: int) -> int:
    raw = env_vars.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env_vars = dict(os.environ if environ is None else environ)
    env = env_vars.get("OVERTURE_ENV", "development").strip().lower()
    if env not in {"development", "test", "production"}:
        raise ConfigError(f"OVERTURE_ENV must be development, test or production, not {env!r}")
    production = env == "production"
    instance = Path(env_vars.get("OVERTURE_INSTANCE_PATH") or Path.cwd() / "instance").resolve()

    database_url = env_vars.get("DATABASE_URL", "").strip()
    if not database_url:
        if production:
            raise ConfigError("DATABASE_URL is required in production")
        instance.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{instance / 'overture.db'}"
    database_url = normalize_database_url(database_url)
    owner_url = normalize_database_url(env_vars.get("DATABASE_OWNER_URL", "").strip()
                                       or database_url)

    secret_key = env_vars.get("SECRET_KEY", "").strip()
    if production and (not secret_key or secret_key == DEFAULT_SECRET or len(secret_key) < 32):
        raise ConfigError("SECRET_KEY must be set to a random value of at least 32 characters "
                          "in production")
    if not secret_key:
        secret_key = _instance_secret(instance, "secret_key")

    parse_allowlist(env_vars.get(ALLOWLIST_ENV, ""))  # a bad CIDR stops the start
    master_key = env_vars.get("OVERTURE_MASTER_KEY", "").strip() or None
    # Parsed (and, in development, generated) by platform.crypto.load_keyring.
    master_key_file = env_vars.get("OVERTURE_MASTER_KEY_FILE", "").strip() or None
    host = env_vars.get("HOST", "127.0.0.1")
    try:
        port = int(env_vars.get("PORT", "8000"))
    except ValueError as exc:
        raise ConfigError(f"PORT must be a number, not {env_vars.get('PORT')!r}") from exc
    checkpoint_path = env_vars.get("OVERTURE_AUDIT_CHECKPOINT_PATH", "").strip()
    smtp_security = env_vars.get("OVERTURE_SMTP_SECURITY", "").strip().lower() or "none"
    if smtp_security not in SMTP_SECURITY:
        raise ConfigError("OVERTURE_SMTP_SECURITY must be none, starttls or tls, "
                          f"not {smtp_security!r}")
    return Settings(
        env=env,
        instance_path=instance,
        database_url=database_url,
        database_owner_url=owner_url,
        redis_url=env_vars.get("REDIS_URL", "").strip() or None,
        redis_namespace=env_vars.get("OVERTURE_REDIS_NAMESPACE", "").strip() or "overture",
        secret_key=secret_key,
        master_key=master_key,
        master_key_file=Path(master_key_file) if master_key_file else None,
        host=host,
        port=port,
        public_url=env_vars.get("OVERTURE_PUBLIC_URL", "").rstrip("/") or f"http://{host}:{port}",
        log_level=env_vars.get("OVERTURE_LOG_LEVEL", "INFO").upper(),
        login_rate_limit=env_vars.get("OVERTURE_LOGIN_RATE_LIMIT", "10 per minute"),
        api_rate_limit=env_vars.get("OVERTURE_API_RATE_LIMIT", "600 per minute"),
        session_cookie_secure=_flag(env_vars.get("OVERTURE_SESSION_COOKIE_SECURE"), production),
        session_idle_minutes=_positive_int(env_vars, "OVERTURE_SESSION_IDLE_MINUTES", 120),
        **_webhook_rates(env_vars),
        session_max_hours=_positive_int(env_vars, "OVERTURE_SESSION_MAX_HOURS", 12),
        # Parsed by platform.audit_seal.load_audit_keyring, with the master keys.
        audit_key=env_vars.get("OVERTURE_AUDIT_KEY", "").strip() or None,
        audit_checkpoint_path=Path(checkpoint_path).resolve() if checkpoint_path
        else instance / "audit-checkpoints.jsonl",
        audit_checkpoint_seconds=_seconds(env_vars, "OVERTURE_AUDIT_CHECKPOINT_SECONDS", 300.0),
        auth_failure_rate_limit=env_vars.get("OVERTURE_AUTH_FAILURE_RATE_LIMIT",
                                             "30 per minute"),
        trusted_proxies=_networks("OVERTURE_TRUSTED_PROXIES",
                                  env_vars.get("OVERTURE_TRUSTED_PROXIES", "")),
        smtp_host=env_vars.get("OVERTURE_SMTP_HOST", "").strip() or None,
        smtp_port=_positive_int(env_vars, "OVERTURE_SMTP_PORT", 25),
        smtp_security=smtp_security,
        smtp_user=env_vars.get("OVERTURE_SMTP_USER", "").strip() or None,
        smtp_password=env_vars.get("OVERTURE_SMTP_PASSWORD") or None,
        mail_from=env_vars.get("OVERTURE_MAIL_FROM", "").strip()
        or "Overture <noreply@localhost>",
        dns_nameservers=_addresses("OVERTURE_DNS_NAMESERVERS",
                                   env_vars.get("OVERTURE_DNS_NAMESERVERS", "")),
        dns_port=_port(env_vars, "OVERTURE_DNS_PORT", 53),
        dns_timeout_seconds=_seconds(env_vars, "OVERTURE_DNS_TIMEOUT_SECONDS", 5.0),
        domain_txt_label=_txt_label(env_vars.get("OVERTURE_DOMAIN_TXT_LABEL", "")),
        payment_grace_days=_days(env_vars, "OVERTURE_PAYMENT_GRACE_DAYS", 7),
        **_stripe(env_vars),
        metrics_token=env_vars.get("OVERTURE_METRICS_TOKEN", "").strip() or None,
        worker_metrics_port=_port_or_off(env_vars, "OVERTURE_WORKER_METRICS_PORT", 9191),
        scheduler_metrics_port=_port_or_off(env_vars, "OVERTURE_SCHEDULER_METRICS_PORT", 9192),
        tracing_endpoint=_traces_url(env_vars),
        service_name=env_vars.get("OTEL_SERVICE_NAME", "").strip() or "overture",
    )


def _stripe(env_vars: dict[str, str]) -> dict[str, object]:
    base = env_vars.get("OVERTURE_STRIPE_API_BASE", "").strip().rstrip("/")
    if base and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", base):
        raise ConfigError(f"OVERTURE_STRIPE_API_BASE must be an http(s) URL, not {base!r}")
    retries = env_vars.get("OVERTURE_STRIPE_MAX_RETRIES", "").strip()
    if retries and not retries.isdigit():
        raise ConfigError(f"OVERTURE_STRIPE_MAX_RETRIES must be a whole number, not {retries!r}")
    return {
        "stripe_api_key": env_vars.get("STRIPE_API_KEY", "").strip() or None,
        "stripe_api_base": base or "https://api.stripe.com",
        "stripe_webhook_secrets": tuple(
            part.strip() for part in env_vars.get("STRIPE_WEBHOOK_SECRET", "").split(",")
            if part.strip()),
        "stripe_webhook_tolerance": _positive_int(
            env_vars, "OVERTURE_STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300),
        "stripe_timeout_seconds": _seconds(env_vars, "OVERTURE_STRIPE_TIMEOUT_SECONDS", 30.0),
        "stripe_max_retries": int(retries) if retries else 2,
        "stripe_settle_minutes": _positive_int(env_vars, "OVERTURE_STRIPE_SETTLE_MINUTES", 10),
    }


def _webhook_rates(env_vars: dict[str, str]) -> dict[str, int]:
    ceiling = _positive_int(env_vars, "OVERTURE_WEBHOOK_RATE_CEILING", 60000)
    default = _positive_int(env_vars, "OVERTURE_WEBHOOK_RATE_PER_MINUTE", min(15000, ceiling))
    if ceiling > 2**31 - 1:  # the column's integer
        raise ConfigError(f"OVERTURE_WEBHOOK_RATE_CEILING must be below 2^31, not {ceiling}")
    if default > ceiling:
        raise ConfigError(f"OVERTURE_WEBHOOK_RATE_PER_MINUTE ({default}) must not exceed "
                          f"OVERTURE_WEBHOOK_RATE_CEILING ({ceiling})")
    return {"webhook_rate_per_minute": default, "webhook_rate_ceiling": ceiling}


def _networks(name: str, value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR blocks."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc} (expected addresses or CIDR blocks, "
                          "comma-separated)") from exc


def _addresses(name: str, value: str) -> tuple[str, ...]:
    """Comma-separated IP addresses (a resolver is named by address, never by name)."""
    try:
        return tuple(str(ipaddress.ip_address(part.strip()))
                     for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc} (expected IP addresses, comma-separated)") from exc


def _traces_url(env_vars: dict[str, str]) -> str | None:
    """Where spans go, as OpenTelemetry's exporters read these variables: the traces
    endpoint as given, or the collector's base URL with the traces path."""
    traces = env_vars.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = env_vars.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if traces or not base:
        return traces or None
    return base.rstrip("/") + "/v1/traces"


def _port_or_off(env_vars: dict[str, str], name: str, default: int) -> int:
    """A port number, or 0 for none."""
    if env_vars.get(name, "").strip() == "0":
        return 0
    return _port(env_vars, name, default)


def _port(env_vars: dict[str, str], name: str, default: int) -> int:
    port = _positive_int(env_vars, name, default)
    if port > 65535:
        raise ConfigError(f"{name} must be a port number (1 to 65535), not {port}")
    return port


# The label ACME's DNS-01 challenge uses: cert-manager rewrites TXT records there.
ACME_LABEL = "_acme-challenge"
TXT_LABEL = re.compile(r"_?[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?")


def _txt_label(value: str) -> str:
    label = value.strip().lower() or "_verify"
    if not TXT_LABEL.fullmatch(label) or label == ACME_LABEL:
        raise ConfigError("OVERTURE_DOMAIN_TXT_LABEL must be one DNS label (letters, digits, "
                          f"'-' and '_', at most 63, not {ACME_LABEL}), not {value!r}")
    return label
