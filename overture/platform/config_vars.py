"""The environment variables Overture reads: name, default and meaning, once, for the
README's table (`overture config`) and the docs test."""

from __future__ import annotations

VARIABLES: list[tuple[str, str, str]] = [
    ("OVERTURE_ENV", "development",
     "`development`, `test` or `production`. Production refuses unsafe defaults."),
    ("DATABASE_URL", "SQLite file in the instance folder",
     "Database the app connects to. On PostgreSQL this role must own no table and "
     "have NOBYPASSRLS."),
    ("DATABASE_OWNER_URL", "`DATABASE_URL`",
     "Connection used by migrations: the role that owns the tables."),
    ("REDIS_URL", "unset: Dramatiq's stub broker with in-process worker threads",
     "Redis for the Dramatiq broker and the rate-limit counters."),
    ("OVERTURE_REDIS_NAMESPACE", "overture",
     "Prefix of every Redis key (queues, rate limits): installations can share a Redis."),
    ("SECRET_KEY", "generated into the instance folder (not in production)",
     "Signs sessions and CSRF tokens. Required in production."),
    ("OVERTURE_MASTER_KEY", "generated into the instance folder (not in production)",
     "Master key(s) for the credentials vault: `kid:base64url-32-bytes`, comma-separated, "
     "the first is the primary. Required in production (or the file below)."),
    ("OVERTURE_MASTER_KEY_FILE", "unset",
     "A file holding the master key(s) instead, one `kid:base64url-32-bytes` per line, "
     "primary first."),
    ("OVERTURE_INSTANCE_PATH", "`./instance`", "Folder for the SQLite file and local keys."),
    ("PORT", "8000", "Port `overture up` and `overture web` listen on."),
    ("HOST", "127.0.0.1", "Address `overture up` and `overture web` bind."),
    ("OVERTURE_PUBLIC_URL", "`http://HOST:PORT`", "Base URL printed and used in links."),
    ("OVERTURE_LOG_LEVEL", "INFO", "Log level; logs are JSON lines on stdout."),
    ("OVERTURE_LOGIN_RATE_LIMIT", "10 per minute",
     "Login attempts per client address and email (60 per minute per address in all)."),
    ("OVERTURE_API_RATE_LIMIT", "600 per minute",
     "API requests per API key, or per user for signed-in sessions, across every endpoint "
     "(see Rate limits)."),
    ("OVERTURE_AUTH_FAILURE_RATE_LIMIT", "30 per minute",
     "Failed authentications (401 answers) per client address; past it, failed attempts "
     "from that address get 429 while valid credentials from it still work."),
    ("OVERTURE_WEBHOOK_RATE_PER_MINUTE", "15000",
     "Calls a minute a workflow's webhook URL takes unless its workflow sets its own "
     "(`webhook_rate_per_minute`): 250 a second, so that one URL can take a whole "
     "installation's intake. Past it the caller gets 429 with `Retry-After`."),
    ("OVERTURE_WEBHOOK_RATE_CEILING", "60000",
     "The most calls a minute a workflow may set for its webhook URL."),
    ("OVERTURE_TRUSTED_PROXIES", "unset: `X-Forwarded-*` headers are ignored",
     "Reverse proxies in front of the app, as addresses or CIDR blocks, comma-separated "
     "(`10.0.0.0/8, 127.0.0.1`). Behind one, the client address (rate limits, audit, an "
     "API key's last use) is the rightmost `X-Forwarded-For` entry that is not a trusted "
     "proxy, and a request from a trusted proxy takes its host and scheme from the last "
     "`X-Forwarded-Host` and `X-Forwarded-Proto` (custom domains, links, secure cookies)."),
    ("OVERTURE_SESSION_COOKIE_SECURE", "true in production",
     "Send the session cookie over HTTPS only."),
    ("OVERTURE_SESSION_IDLE_MINUTES", "120",
     "A signed-in session ends after this many minutes without a request."),
    ("OVERTURE_SESSION_MAX_HOURS", "12",
     "A signed-in session ends this many hours after sign-in, however active."),
    ("OVERTURE_FANOUT_MESSAGES", "4",
     "Messages a parallel step sends at once for its branches (the first branch runs in "
     "the same worker); workers that end a branch take on the queued ones, and branches "
     "still queued a second later are spread over more workers, one message at a time."),
    ("OVERTURE_OUTBOUND_ALLOWLIST", "unset: only public addresses",
     "Comma-separated CIDRs the platform may connect to although they are private, "
     "loopback, link-local, CGNAT or otherwise not public (e.g. `10.20.0.0/16` for an "
     "internal API). Every outbound connection (connectors, OAuth, model providers, "
     "SMTP, IMAP, PostgreSQL) is refused elsewhere, whatever the URL's spelling."),
    ("OVERTURE_LEASE_GRACE_SECONDS", "30",
     "Seconds a worker's lease on a step outlasts the step's timeout; the sweeper re-runs "
     "a step whose worker died this long after its timeout. Also how long a worker keeps "
     "trying to record a step while the database is unreachable."),
    ("OVERTURE_AUDIT_KEY", "derived from the master key(s)",
     "Key(s) that MAC the audit checkpoints: `kid:base64url-32-bytes`, comma-separated, the "
     "first seals, all verify. Unset: derived from each master key (HKDF)."),
    ("OVERTURE_AUDIT_CHECKPOINT_PATH", "`audit-checkpoints.jsonl` in the instance folder",
     "Append-only file of MACed audit chain heads; keep a copy off the database host."),
    ("OVERTURE_AUDIT_CHECKPOINT_SECONDS", "300",
     "Seconds between the scheduler's audit checkpoints."),
    ("OVERTURE_SMTP_HOST", "unset: mail stays in the local outbox",
     "The installation's mail relay for platform mail (invitations, password resets). "
     "Unset: each message is kept in the `mail_outbox` table, marked sent to the local "
     "mailbox and its text logged."),
    ("OVERTURE_SMTP_PORT", "25", "Port of the mail relay."),
    ("OVERTURE_SMTP_SECURITY", "none",
     "`none`, `starttls` (upgrade after connecting, certificate verified) or `tls` "
     "(TLS from the first byte)."),
    ("OVERTURE_SMTP_USER", "unset: no authentication", "User name for the mail relay."),
    ("OVERTURE_SMTP_PASSWORD", "unset", "Password for the mail relay."),
    ("OVERTURE_MAIL_FROM", "`Overture <noreply@localhost>`",
     "The `From` of platform mail. Mail about a tenant goes from its address under the "
     "tenant's sender name (or from the tenant's own SMTP server's address): with "
     "white-label clients, choose an address that names no product."),
    ("OVERTURE_DNS_NAMESERVERS", "unset: the system's resolvers (`/etc/resolv.conf`)",
     "Addresses of the DNS resolvers that verify custom domains (their TXT records), "
     "comma-separated (`1.1.1.1, 9.9.9.9`)."),
    ("OVERTURE_DNS_PORT", "53", "Port of those resolvers."),
    ("OVERTURE_DNS_TIMEOUT_SECONDS", "5",
     "How long one custom-domain verification waits for the resolvers in all."),
    ("OVERTURE_DOMAIN_TXT_LABEL", "`_verify`",
     "The label of the TXT record that proves a custom domain: `<label>.<domain>`. Tenants "
     "see it, so with white label it should name no product (the default names none)."),
    ("OVERTURE_PAYMENT_GRACE_DAYS", "7",
     "Days a tenant whose payment failed keeps running; after them, new runs are refused "
     "(HTTP 402 `past-due`) until a payment succeeds. Data is kept."),
    ("STRIPE_API_KEY", "unset: nothing is sent to Stripe",
     "The platform's Stripe secret (or restricted) key: it bills the agencies. Agencies "
     "connect their own account on their Stripe page to bill their clients."),
    ("OVERTURE_STRIPE_API_BASE", "`https://api.stripe.com`",
     "Where the Stripe API is reached (a test server, a proxy)."),
    ("STRIPE_WEBHOOK_SECRET", "unset: `/webhooks/stripe` refuses every call",
     "The signing secret(s) of the Stripe webhook endpoint(s) pointing at "
     "`/webhooks/stripe`, comma-separated (the account's endpoint and the Connect one)."),
    ("OVERTURE_STRIPE_WEBHOOK_TOLERANCE_SECONDS", "300",
     "How old a webhook's signed timestamp may be before it is refused (replays)."),
    ("OVERTURE_STRIPE_TIMEOUT_SECONDS", "30", "Timeout of one request to Stripe."),
    ("OVERTURE_STRIPE_MAX_RETRIES", "2",
     "Retries of one request to Stripe after a 5xx, a timeout or a connection error "
     "(backing off); the meter-event outbox keeps retrying after that, for as long as "
     "Stripe is down."),
    ("OVERTURE_STRIPE_SETTLE_MINUTES", "10",
     "Minutes after an hour ends before its usage is queued for Stripe (work recorded "
     "late still lands in its hour)."),
    ("OVERTURE_METRICS_TOKEN", "unset: `/metrics` answers anyone who reaches it",
     "A bearer token the web app's `/metrics` asks for (`Authorization: Bearer ...`)."),
    ("OVERTURE_WORKER_METRICS_PORT", "9191",
     "Port on which `overture worker` serves its processes' Prometheus metrics; 0 = none."),
    ("OVERTURE_SCHEDULER_METRICS_PORT", "9192",
     "Port on which `overture scheduler` serves its Prometheus metrics (sweeper, "
     "approvals waiting); 0 = none."),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "unset: no tracing",
     "OpenTelemetry collector (OTLP over HTTP, e.g. `http://otel-collector:4318`): set, "
     "every process sends its spans there. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and the "
     "exporter's other `OTEL_EXPORTER_OTLP_*` variables apply too."),
    ("OTEL_SERVICE_NAME", "overture", "The service name on the spans."),
]


def markdown_table() -> str:
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | {default} | {meaning} |" for name, default, meaning in VARIABLES]
    return "\n".join(rows)
