"""What every `overture` command shares: its settings, and errors as one-line messages."""

from __future__ import annotations

from typing import Any

import click

from overture.platform.config import Settings, load_settings
from overture.platform.errors import OvertureError


def load() -> Settings:
    """The settings from the environment; a bad value is a one-line message."""
    try:
        return load_settings()
    except OvertureError as err:
        raise click.ClickException(err.detail) from err


class Group(click.Group):
    """Turn our errors into a one-line message and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OvertureError as err:
            raise click.ClickException(err.detail) from err
