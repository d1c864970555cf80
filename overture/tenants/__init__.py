"""Tenants (agencies and their client workspaces), users, memberships, roles, API keys."""
