"""A tiny IMAP4rev1 server for the tests: the few commands the IMAP trigger uses
(CAPABILITY, LOGIN, SELECT/EXAMINE, UID SEARCH, UID FETCH, NOOP, LOGOUT), over a real
socket, with the real protocol's literals and response codes."""

from __future__ import annotations

import re
import socketserver
import threading
from email.message import EmailMessage
from typing import Any

TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def args_of(text: str) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", q) if q or not a else a for q, a in TOKEN.findall(text)]


def email_bytes(subject: str, sender: str = "Ada Lovelace <ada@client.example.com>",
                message_id: str | None = None, text: str = "Hello!",
                html: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "inbox@agency.example.com"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 21 Nov 2026 09:30:00 +0000"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)


class FakeImap:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.messages: list[tuple[int, bytes]] = []
        self.uidvalidity, self.next_uid = 1000, 1
        self.commands: list[str] = []
        self.search_barrier: threading.Barrier | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake.serve(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def deliver(self, raw: bytes) -> int:
        with self.lock:
            uid = self.next_uid
            self.messages.append((uid, raw))
            self.next_uid += 1
            return uid

    def renumber(self) -> None:
        """The folder was rebuilt: a new UIDVALIDITY, and every message a new UID."""
        with self.lock:
            self.uidvalidity += 1
            self.messages = [(i + 1, raw) for i, (_, raw) in enumerate(self.messages)]
            self.next_uid = len(self.messages) + 1

    def count(self, command: str) -> int:
        return sum(1 for c in self.commands if c.upper().startswith(command))

    def serve(self, handler: Any) -> None:
        def say(line: str | bytes) -> None:
            handler.wfile.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")

        say("* OK IMAP4rev1 fake server ready")
        authed = False
        while True:
            raw = handler.rfile.readline()
            if not raw:
                return
            tag, _, rest = raw.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            self.commands.append(f"{command} {args}" if not command.startswith("LOGIN")
                                 else "LOGIN")
            if command == "CAPABILITY":
                say("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
                say(f"{tag} OK CAPABILITY completed")
            elif command == "LOGIN":
                user, password = ([*args_of(args), "", ""])[:2]
                if (user, password) == (self.username, self.password):
                    authed = True
                    say(f"{tag} OK LOGIN completed")
                else:
                    say(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
            elif command == "NOOP":
                say(f"{tag} OK NOOP completed")
            elif command == "LOGOUT":
                say("* BYE logging out")
                say(f"{tag} OK LOGOUT completed")
                return
            elif not authed:
                say(f"{tag} BAD log in first")
            elif command in ("SELECT", "EXAMINE"):
                if args_of(args)[:1] != ["INBOX"]:
                    say(f"{tag} NO [NONEXISTENT] no such folder")
                    continue
                with self.lock:
                    say(f"* {len(self.messages)} EXISTS")
                    say("* 0 RECENT")
                    say(f"* OK [UIDVALIDITY {self.uidvalidity}] UIDs valid")
                    say(f"* OK [UIDNEXT {self.next_uid}] Predicted next UID")
                say("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
                mode = "READ-ONLY" if command == "EXAMINE" else "READ-WRITE"
                say(f"{tag} OK [{mode}] {command} completed")
            elif command == "UID":
                self.uid_command(tag, args, say)
            else:
                say(f"{tag} BAD unknown command")

    def uid_command(self, tag: str, args: str, say: Any) -> None:
        sub, _, rest = args.partition(" ")
        with self.lock:
            messages = list(self.messages)
        if sub.upper() == "SEARCH":
            if self.search_barrier is not None:
                self.search_barrier.wait(10)
            low, _, high = args_of(rest)[-1].partition(":")
            uids = [u for u, _ in messages if u >= int(low) and (
                high in ("", "*") or u <= int(high))]
            if high == "*" and not uids and messages:
                uids = [messages[-1][0]]  # RFC 3501: "n:*" always includes the last UID
            say("* SEARCH" + "".join(f" {u}" for u in uids))
            say(f"{tag} OK SEARCH completed")
        elif sub.upper() == "FETCH":
            wanted, _, items = rest.partition(" ")
            for seq, (uid, raw) in enumerate(messages, start=1):
                if str(uid) == wanted:
                    partial = "<0>" if "<0." in items else ""
                    say(f"* {seq} FETCH (UID {uid} BODY[]{partial} {{{len(raw)}}}".encode()
                        + b"\r\n" + raw + b")\r\n")
            say(f"{tag} OK FETCH completed")
        else:
            say(f"{tag} BAD unknown UID command")

    def __enter__(self) -> FakeImap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
