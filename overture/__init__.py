"""Overture: a multi-tenant, white-label platform for AI agent orchestration."""

__version__ = "0.1.0"
