"""Signed outbound events: a workspace (or an agency, for all its clients) subscribes a
URL to event types; each event is written to an outbox in the transaction of the fact it
reports, and sent as a Standard Webhooks POST, retried for a day.

- `models`: subscriptions, deliveries (one per event and subscription, its `webhook-id`
  fixed at birth) and attempts (the delivery log).
- `subscriptions`: create, change, rotate the secret (kept in the vault), delete.
- `outbox`: `emit`, called by the floors that know the facts (runs, approvals,
  workflows, budgets), cheap for a tenant that subscribes to nothing.
- `sender`: signs and sends a delivery, retries, gives up, alerts, redelivers.

It lives on the tenants floor so that billing and orchestration can both emit.
"""
