"""Workflows, versions, runs, the engine, agents, LLM providers, schedules."""
