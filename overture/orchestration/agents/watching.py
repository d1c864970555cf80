"""Showing an agent's answer while the model produces it (a portal chat streams it).

A `Watcher` reads it: `text` gets each new piece of what a person would read
(`contract.OutputText` takes it out of the answer's JSON), `restart` says that what
was shown so far is not the answer after all (the model went on to call a tool, or
its answer was refused and it answers again). Only a text answer of the invoked agent
is shown this way, not its delegates' nor a structured output: those are shown whole.
"""

from __future__ import annotations

from typing import Protocol

from overture.orchestration.agents.contract import OutputText
from overture.orchestration.llm.base import Provider, chat_streaming
from overture.orchestration.llm.types import ChatRequest, ChatResult


class Watcher(Protocol):
    def text(self, piece: str) -> None: ...

    def restart(self) -> None: ...


class Showing:
    """One invocation's model calls, each streamed to the watcher."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.shown = False  # text went to the watcher since the last restart

    def ask(self, provider: Provider, request: ChatRequest) -> ChatResult:
        if self.shown:
            self.watcher.restart()
            self.shown = False
        reader = OutputText()

        def on_text(piece: str) -> None:
            readable = reader.feed(piece)
            if readable:
                self.shown = True
                self.watcher.text(readable)

        return chat_streaming(provider, request, on_text)
