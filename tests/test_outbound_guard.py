"""The outbound guard itself (`pytest -k outbound`): which addresses it refuses, in
every spelling, with a real local server that must never see a request; that it
connects to the address it checked (one resolution, the original Host and TLS server
name) and checks every redirect; the allow-list."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Response

from overture.platform import http, outbound
from overture.platform.config import load_settings
from overture.platform.errors import ConfigError
from overture.platform.outbound import BlockedDestination, check_host, refusal
from tests.outbound_support import http_server, listening


@pytest.fixture
def no_allowlist(monkeypatch):
    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST", raising=False)


# Every spelling below names the local listener (loopback, or "this host"); none may
# reach it. `{port}` is the listener's.
SPELLINGS = [
    "http://127.0.0.1:{port}/", "http://2130706433:{port}/", "http://0x7f000001:{port}/",
    "http://0x7f.1:{port}/", "http://0x7f.0x0.0x0.0x1:{port}/", "http://127.1:{port}/",
    "http://017700000001:{port}/", "http://0177.0.0.1:{port}/",
    "http://127.000.000.001:{port}/", "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/", "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
    "http://[::127.0.0.1]:{port}/", "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/", "http://localhost:{port}/",
    "http://LOCALHOST:{port}/", "http://LocalHost:{port}/", "HTTP://127.0.0.1:{port}/",
    "http://good.example.com@127.0.0.1:{port}/", "http://user:pw@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}/#@good.example.com", "http://127.0.0.1:{port}/?@good.com",
    "http://0:{port}/", "http://0.0.0.0:{port}/", "http://[::]:{port}/",
    "http://[::1]:{port}/", "http://127。0。0。1:{port}/",
    "http://ｌｏｃａｌｈｏｓｔ:{port}/",  # noqa: RUF001 - full-width letters, on purpose
    "http://①②⑦.0.0.1:{port}/", "http://127.0.0.1.:{port}/", "http://localhost.:{port}/",
    "http://127.0.0.1%09:{port}/", "http://127.0.0.1:{port}\\@good.example.com/",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_outbound_guard_refuses_every_spelling_of_the_local_host(spelling, no_allowlist):
    with listening() as listener:
        url = spelling.format(port=listener.port)
        with pytest.raises((BlockedDestination, http.HTTPError)) as refused:
            http.request("GET", url, headers={"Authorization": "Bearer secret"})
        assert listener.connections() == 0, url
    if isinstance(refused.value, http.HTTPError):  # a name this resolver does not know
        assert "cannot resolve" in str(refused.value), url
    else:
        assert refused.value.status == 422 and refused.value.code == "blocked-destination"


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("10.1.2.3", "private"),
    ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("100.64.0.1", "carrier-grade NAT"),
    ("100.100.100.200", "carrier-grade NAT"), ("0.0.0.0", "this network"),  # noqa: S104
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("192.0.0.192", "IETF"), ("198.18.0.1", "benchmarking"), ("192.0.2.1", "documentation"),
    ("::", "unspecified"), ("::1", "loopback"), ("fe80::1", "link-local"),
    ("fec0::1", "site-local"), ("fc00::1", "unique local"), ("fd00:ec2::254", "metadata"),
    ("ff02::1", "multicast"), ("::ffff:169.254.169.254", "IPv4-mapped"),
    ("::ffff:10.0.0.1", "IPv4-mapped"), ("::10.0.0.1", "IPv4-compatible"),
    ("64:ff9b::a9fe:a9fe", "NAT64"), ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:a9fe:a9fe::1", "6to4"), ("2002:7f00:1::1", "6to4"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo"),  # client 127.0.0.1
    ("2001:db8::1", "documentation"), ("100::1", "discard"), ("4000::1", "reserved"),
])
def test_outbound_guard_refuses_non_public_addresses(address, why):
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason, (address, reason)


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.32.0.1",
    "2606:4700:4700::1111", "2a00:1450:4001:81c::200e", "::ffff:8.8.8.8",
    "64:ff9b::808:808", "2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
])
def test_outbound_guard_lets_public_addresses_through(address):
    assert refusal(ipaddress.ip_address(address)) is None


FORBIDDEN_V4 = [net for net, _ in outbound.FORBIDDEN_V4]


@st.composite
def forbidden_v4(draw):
    net = draw(st.sampled_from(FORBIDDEN_V4))
    return net[draw(st.integers(0, net.num_addresses - 1))]


public_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address).filter(
    lambda ip: not any(ip in net for net in FORBIDDEN_V4))


def embeddings(ip: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    n = int(ip)
    return [ipaddress.IPv6Address(0xFFFF << 32 | n),  # IPv4-mapped
            ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | n),  # NAT64
            ipaddress.IPv6Address(0x2002 << 112 | n << 80)]  # 6to4


def spellings(ip: ipaddress.IPv4Address) -> list[str]:
    octets = str(ip).split(".")
    return [str(int(ip)), hex(int(ip)), "0" + oct(int(ip))[2:],
            ".".join("0" + oct(int(o))[2:] for o in octets),
            ".".join(hex(int(o)) for o in octets)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(forbidden_v4())
def test_outbound_guard_property_forbidden_ipv4_in_every_form(no_allowlist, ip):
    assert refusal(ip) is not None
    for v6 in embeddings(ip):
        assert refusal(v6) is not None, v6
    for spelled in spellings(ip):  # numeric: the resolver parses them, asks no DNS
        with pytest.raises(BlockedDestination, match=str(ip).replace(".", r"\.")):
            check_host(spelled, 80)


@settings(max_examples=300)
@given(public_v4)
def test_outbound_guard_property_public_ipv4_in_every_form(ip):
    assert refusal(ip) is None
    assert [refusal(v6) for v6 in embeddings(ip)] == [None, None, None]
    for spelled in spellings(ip):
        assert check_host(spelled, 443).addresses == (str(ip),)


def test_outbound_guard_allowlist_admits_only_its_networks(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32, 10.20.0.0/16")
    assert check_host("2130706433", 80).addresses == ("127.0.0.1",)
    assert check_host("10.20.3.4", 80).addresses == ("10.20.3.4",)
    for other in ("127.0.0.2", "10.21.0.1", "169.254.169.254"):
        with pytest.raises(BlockedDestination):
            check_host(other, 80)
    with pytest.raises(ConfigError, match="OVERTURE_OUTBOUND_ALLOWLIST"):
        load_settings({"OVERTURE_OUTBOUND_ALLOWLIST": "10.0.0.0/33",
                       "OVERTURE_INSTANCE_PATH": "/tmp/overture-test-instance"})


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.com/",
                                 "ftp://example.com/", "http:///nohost", "//example.com/",
                                 "javascript:alert(1)"])
def test_outbound_guard_refuses_other_schemes(url, no_allowlist):
    with pytest.raises(BlockedDestination):
        http.request("GET", url)


def test_outbound_guard_rechecks_every_redirect_without_reaching_the_target(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    with http_server("127.0.0.1") as allowed, listening("127.0.0.2") as internal:
        allowed.expect_request("/hop").respond_with_response(Response(
            status=302, headers={"Location": internal.url("/admin")}))
        allowed.expect_request("/meta").respond_with_response(Response(
            status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
        with pytest.raises(BlockedDestination, match=r"127\.0\.0\.2"):
            http.request("GET", allowed.url_for("/hop"))
        with pytest.raises(BlockedDestination, match=r"169\.254\.169\.254"):
            http.request("POST", allowed.url_for("/meta"), json={"a": 1})
        assert internal.connections() == 0
        assert [r.path for r, _ in allowed.log] == ["/hop", "/meta"]


class Resolver:
    """A DNS that answers `rebind.test` differently each time (as a rebinding attacker's
    does): the first answer is the allowed address, every later one the internal one."""

    def __init__(self, monkeypatch, *answers: str) -> None:
        self.answers, self.asked = list(answers), 0
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host != "rebind.test":
                return real(host, port, *args, **kwargs)
            self.asked += 1
            address = self.answers[min(self.asked, len(self.answers)) - 1]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_outbound_guard_connects_to_the_address_it_checked(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    with http_server("127.0.0.1") as checked, listening("127.0.0.2", checked.port) as rebound:
        resolver = Resolver(monkeypatch, "127.0.0.1", "127.0.0.2")
        checked.expect_request("/x").respond_with_data("from the checked address")
        url = f"http://rebind.test:{checked.port}/x"
        response = http.request("GET", url)
        assert response.text == "from the checked address"
        assert resolver.asked == 1  # resolved once: the connection used that answer
        assert rebound.connections() == 0
        (request, _) = checked.log[0]
        assert request.headers["Host"] == f"rebind.test:{checked.port}"
        # A fresh request resolves again, gets the internal address, and is refused.
        with pytest.raises(BlockedDestination, match=r"127\.0\.0\.2"):
            http.request("GET", url)
        assert rebound.connections() == 0


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_outbound_guard_keeps_the_tls_server_name_of_the_url(monkeypatch, tmp_path):
    """Connecting to the checked address, TLS still names (SNI) and verifies the host of
    the URL: a certificate nobody vouches for is refused."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    Resolver(monkeypatch, "127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(tmp_path, "rebind.test"))
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(http.HTTPError, match="CERTIFICATE_VERIFY_FAILED"):
            http.request("GET", f"https://rebind.test:{port}/")
        thread.join(10)
    finally:
        server.close()
    assert names == ["rebind.test"]
