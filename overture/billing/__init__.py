"""Usage events, plans, quotas, price books, Stripe sync and webhooks."""
