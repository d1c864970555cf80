"""Connector framework (auth, actions, triggers) and the library of app connectors."""
