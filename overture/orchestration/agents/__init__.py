"""Agents: per-tenant configurations (versioned), the tool-calling runtime, memory,
knowledge collections, and the multi-agent step types built on them."""
