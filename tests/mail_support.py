"""Mail test helpers: real local SMTP servers (aiosmtpd) that keep what they receive,
optionally asking for a sign-in, and a way to follow a mailed link with the test
client on the host it names."""

from __future__ import annotations

import base64
import email
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask.testing import FlaskClient

from tests.engine_support import free_port
from tests.support import CSRF_RE, PASSWORD

LINK = re.compile(r"https?://[^\s\"'<>]+")


class Inbox:
    """An SMTP server's mailbox: every message it accepted, with its envelope."""

    def __init__(self, login: tuple[str, str] | None = None,
                 refusal: str | None = None) -> None:
        self.login, self.refusal = login, refusal
        self.envelopes: list[Any] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        if self.refusal is not None:  # a server that says too much, as some do
            said = self.refusal.format(user=user, password=password,
                                       password_b64=base64.b64encode(password.encode()).decode())
            return AuthResult(success=False, handled=False, message=said)
        ok = self.login is not None and (user, password) == self.login
        if ok:
            with self._lock:
                self.logins.append(user)
        return AuthResult(success=ok, handled=False)

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        with self._lock:
            found = [e for e in self.envelopes if to is None or to in e.rcpt_tos]
        return [email.message_from_bytes(e.content, policy=policy.default)  # type: ignore[misc]
                for e in found]

    def raw(self, message: EmailMessage) -> bytes:
        return message.as_bytes()

    def wait(self, to: str, count: int = 1, timeout: float = 30.0) -> list[EmailMessage]:
        """The messages to `to`, once at least `count` arrived (a bound for a busy
        machine, not a speed check)."""
        deadline = time.monotonic() + timeout
        while len(found := self.messages(to)) < count:
            assert time.monotonic() < deadline, f"no mail to {to} arrived: {self.summary()}"
            time.sleep(0.05)
        return found

    def summary(self) -> list[tuple[list[str], str]]:
        return [(m["To"], m["Subject"]) for m in self.messages()]  # type: ignore[misc]


@contextmanager
def smtp_server(inbox: Inbox | None = None) -> Iterator[tuple[int, Inbox]]:
    inbox = inbox or Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=inbox.authenticate, auth_require_tls=False)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message, with the wire's CRLF line ends
    read as the reader's lines."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None, message
    return (text.get_content().replace("\r\n", "\n"),
            html.get_content().replace("\r\n", "\n"))


def links(text: str) -> list[str]:
    return LINK.findall(text)


def follow(client: FlaskClient, url: str, **kwargs: Any) -> Any:
    """GET a mailed link as a browser would: on the host (and scheme) it names."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    kwargs.setdefault("headers", {"Accept": "text/html"})
    return client.get(path, base_url=f"{parts.scheme}://{parts.netloc}", **kwargs)


def csrf_on(client: FlaskClient, url: str) -> str:
    match = CSRF_RE.search(follow(client, url).get_data(as_text=True))
    assert match, url
    return match.group(1)


def post_form_on(client: FlaskClient, base: str, path: str, **data: str) -> Any:
    """A form on `base` (such as a custom domain's https address) posted as a browser
    does, with its CSRF token and Referer (checked over https)."""
    url = base + path
    return client.post(path, base_url=base, headers={"Referer": url},
                       data={**data, "csrf_token": csrf_on(client, url)})


def signed_in_on(app: Any, base: str, email: str) -> FlaskClient:
    """A client signed in on `base`'s host (a session belongs to its host)."""
    client: FlaskClient = app.test_client()
    answer = post_form_on(client, base, "/login", email=email, password=PASSWORD)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client
