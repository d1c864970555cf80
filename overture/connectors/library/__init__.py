"""The connector library: one module per app, each with a module-level CONNECTOR."""
