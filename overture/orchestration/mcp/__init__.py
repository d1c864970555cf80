"""MCP: a workspace's published workflows and agents as tools for outside MCP clients."""
