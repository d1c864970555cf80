"""An AST scan of `overture/` for outbound connections that bypass the guard.

Outside the guard modules, code may not touch a networking library at all (httpx,
sockets, urllib.request, ...), may not open SMTP/IMAP/POP/FTP sessions or PostgreSQL
connections itself, and may build an OpenAI/Anthropic SDK client or an Authlib OAuth
client only with the guard's HTTP client or transport. Exceptions of those libraries
(`smtplib.SMTPException`, `openai.APIError`) are fine: they open nothing.

Names are resolved through each module's imports, so `from socket import
create_connection as cc` is caught as well as `socket.create_connection`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# resolver.py asks only the installation's configured DNS resolvers (a tenant names a
# record to look up, never where to send the query): like the guard's own resolution.
GUARD_MODULES = frozenset({"overture/platform/outbound.py", "overture/platform/http.py",
                           "overture/platform/resolver.py"})
# The container's HEALTHCHECK asks its own web server on 127.0.0.1 and the port the
# container was started with: no tenant or request names where it connects.
OWN_PROCESS_MODULES = frozenset({"overture/healthcheck.py"})

# Any reference to these (or anything under them) opens or can open a connection.
FORBIDDEN = (
    "httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3", "aiohttp", "pycurl",
    "urllib.request", "http.client", "socket", "ssl.create_connection", "ftplib", "poplib",
    "telnetlib", "nntplib", "xmlrpc.client", "asyncio.open_connection",
    "asyncio.open_unix_connection", "websocket", "websockets",
    "paramiko", "dns", "smtplib.SMTP", "smtplib.SMTP_SSL", "smtplib.LMTP", "imaplib.IMAP4",
    "imaplib.IMAP4_SSL", "imaplib.IMAP4_stream", "psycopg.connect", "psycopg.Connection",
    "psycopg.AsyncConnection", "psycopg_pool", "psycopg2", "asyncpg",
    "authlib.integrations.requests_client",
)
# Exceptions nested in a connection class: catching them opens nothing.
HARMLESS = frozenset({"imaplib.IMAP4.error", "imaplib.IMAP4.abort", "imaplib.IMAP4.readonly"})
# Clients that may be built only when handed the guard (keyword -> guard function).
GUARDED_CONSTRUCTORS = {
    "openai.OpenAI": ("http_client", "overture.platform.http.client"),
    "openai.AzureOpenAI": ("http_client", "overture.platform.http.client"),
    "openai.Client": ("http_client", "overture.platform.http.client"),
    "openai.AsyncOpenAI": ("http_client", "overture.platform.http.client"),
    "openai.AsyncAzureOpenAI": ("http_client", "overture.platform.http.client"),
    "anthropic.Anthropic": ("http_client", "overture.platform.http.client"),
    "anthropic.Client": ("http_client", "overture.platform.http.client"),
    "anthropic.AsyncAnthropic": ("http_client", "overture.platform.http.client"),
    "anthropic.AnthropicBedrock": ("http_client", "overture.platform.http.client"),
    "anthropic.AnthropicVertex": ("http_client", "overture.platform.http.client"),
    "authlib.integrations.httpx_client.OAuth2Client":
        ("transport", "overture.platform.http.transport"),
    "authlib.integrations.httpx_client.AsyncOAuth2Client":
        ("transport", "overture.platform.http.transport"),
    "authlib.integrations.httpx_client.OAuth1Client":
        ("transport", "overture.platform.http.transport"),
    "authlib.integrations.httpx_client.AssertionClient":
        ("transport", "overture.platform.http.transport"),
}
# The guard's ways out: a module calling one of these is an outbound path.
OPENERS = frozenset({
    "overture.platform.http.request", "overture.platform.http.client",
    "overture.platform.http.async_client",
    "overture.platform.http.transport", "overture.platform.outbound.open_socket",
    "overture.platform.outbound.PinnedSMTP", "overture.platform.outbound.PinnedSMTPSSL",
    "overture.platform.outbound.PinnedIMAP", "overture.platform.outbound.PinnedIMAPSSL",
    "overture.platform.outbound.connect_postgres",
})
# The installation's own services (DATABASE_URL, REDIS_URL), never a tenant's address.
OWN_INFRASTRUCTURE = {
    ("overture/platform/pipeline.py", "psycopg.connect"):
        "the pipeline's connection to the installation's DATABASE_URL",
    ("overture/platform/mail_delivery.py", "smtplib.SMTP"):
        "platform mail to the installation's relay, OVERTURE_SMTP_HOST",
    ("overture/platform/mail_delivery.py", "smtplib.SMTP_SSL"):
        "platform mail to the installation's relay, OVERTURE_SMTP_HOST",
}


@dataclass(frozen=True)
class Finding:
    module: str
    line: int
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.name} ({self.why})"


def _under(name: str, prefixes: tuple[str, ...] | frozenset[str]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


class _Scan(ast.NodeVisitor):
    def __init__(self, module: str, package: str) -> None:
        self.module, self.package = module, package
        self.aliases: dict[str, str] = {}
        self.findings: list[Finding] = []
        self.guard_uses: set[str] = set()
        self.skip: set[int] = set()  # annotations, and constructor calls already judged

    def qualified(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def flag(self, node: ast.AST, name: str, why: str) -> None:
        if (self.module, _under(name, FORBIDDEN) or name) in OWN_INFRASTRUCTURE:
            return
        self.findings.append(Finding(self.module, getattr(node, "lineno", 0), name, why))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = \
                alias.name if alias.asname else alias.name.split(".")[0]
            if _under(alias.name, FORBIDDEN):
                self.flag(node, alias.name, "imports a networking library")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self.aliases[alias.asname or alias.name] = full
            if _under(full, FORBIDDEN) or _under(base, FORBIDDEN):
                self.flag(node, full, "imports from a networking library")

    def _annotations(self, node: ast.AST) -> None:
        for child in ast.walk(node):
            self.skip.add(id(child))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotations(node.annotation)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        if node.annotation is not None:
            self._annotations(node.annotation)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.returns is not None:
            self._annotations(node.returns)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        if name in OPENERS:
            self.guard_uses.add(name)
        if name in GUARDED_CONSTRUCTORS:
            keyword, guard = GUARDED_CONSTRUCTORS[name]
            given = next((k.value for k in node.keywords if k.arg == keyword), None)
            if not (isinstance(given, ast.Call) and self.qualified(given.func) == guard):
                self.flag(node, name, f"built without {keyword}={guard}(...)")
            self.skip.add(id(node.func))
            self._skip_chain(node.func)
        self.generic_visit(node)

    def _skip_chain(self, node: ast.AST) -> None:
        while isinstance(node, ast.Attribute):
            node = node.value
            self.skip.add(id(node))

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        if id(node) in self.skip or isinstance(getattr(node, "ctx", None), ast.Store):
            return
        name = self.qualified(node)
        if not name:
            return
        if name in HARMLESS:
            return
        if name in GUARDED_CONSTRUCTORS:
            self.flag(node, name, "an SDK client used other than built with the guard")
        elif _under(name, FORBIDDEN):
            self.flag(node, name, "opens connections outside the guard")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._reference(node)
        self._skip_chain(node)  # `a.b.c`: judged once, as a whole
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._reference(node)


@dataclass
class Report:
    findings: list[Finding]
    guard_uses: dict[str, set[str]]  # module -> the guard's openers it calls


def scan_source(source: str, module: str) -> Report:
    package = module.removesuffix(".py").replace("/", ".").rsplit(".", 1)[0]
    scan = _Scan(module, package)
    scan.visit(ast.parse(source, module))
    return Report(scan.findings, {module: scan.guard_uses} if scan.guard_uses else {})


def scan_tree(root: Path = ROOT) -> Report:
    findings: list[Finding] = []
    uses: dict[str, set[str]] = {}
    for path in sorted((root / "overture").rglob("*.py")):
        module = path.relative_to(root).as_posix()
        if module in GUARD_MODULES | OWN_PROCESS_MODULES:
            continue
        report = scan_source(path.read_text(), module)
        findings += report.findings
        uses.update(report.guard_uses)
    return Report(findings, uses)
