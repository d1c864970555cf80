"""`overture admin`: platform admins."""

from __future__ import annotations

import sys

import click

from overture.cli.base import load as _settings


@click.group("admin")
def admin_group() -> None:
    """Platform admins."""


CLI_ADMIN_ACTOR = "overture admin create (CLI)"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only its line ending is removed, the rest is the password as typed.
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin_group.command("create")
@click.argument("email")
@click.option("--name", default="", help="the admin's display name")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of standard input")
def admin_create(email: str, name: str, password_stdin: bool) -> None:
    """Create a platform admin who signs in with EMAIL (e.g. the first one, after
    `overture db upgrade`). Asks for the password twice, unless --password-stdin."""
    from overture.platform import audit
    from overture.platform.db import db
    from overture.tenants.accounts import create_platform_admin
    from overture.web.app import create_app

    settings = _settings()
    password = _read_password(password_stdin)
    app = create_app(settings)
    with app.app_context():
        user = create_platform_admin(email, password, name,
                                     actor=audit.Actor("cli", None, CLI_ADMIN_ACTOR))
        db.session.commit()
        click.echo(f"created platform admin {user.email}; sign in at {settings.public_url}/login")
