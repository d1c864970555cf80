"""MCP test helpers: the SDK's own client against a URL, run to completion from sync
tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def with_session(url: str, token: str | None,
                 work: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Open an MCP session to `url` (the SDK's Streamable HTTP client, initialize
    handshake included) with `token` as the bearer key, and return `work(session)`."""

    async def main() -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
                streamable_http_client(url, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    return anyio.run(main)
