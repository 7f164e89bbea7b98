"""Finding 9: only AEAD ECDHE suites on TLS 1.2, and TLS 1.3, on the broker (shipped config) and on the
client context the agent and the receiver both use."""
from __future__ import annotations

import socket
import ssl

import pytest

WEAK_TLS12 = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-SHA", "AES128-GCM-SHA256"]
STRONG_TLS12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"]


def _handshake(port: int, pki, *, cipher: str | None, tls13: bool) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki.ca))
    ctx.load_cert_chain(*map(str, pki.certs["dev-01"]))
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # a client that offers anything
    if tls13:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"{cipher}:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return f"{tls.version()} {tls.cipher()[0]}"


@pytest.mark.parametrize("cipher", WEAK_TLS12)
def test_broker_refuses_weak_tls12_suites(broker, pki, cipher):
    with pytest.raises(ssl.SSLError):
        _handshake(broker.port, pki, cipher=cipher, tls13=False)


def test_broker_accepts_aead_ecdhe_on_tls12_and_tls13(broker, pki):
    for cipher in STRONG_TLS12:
        assert _handshake(broker.port, pki, cipher=cipher, tls13=False) == f"TLSv1.2 {cipher}"
    assert _handshake(broker.port, pki, cipher=None, tls13=True).startswith("TLSv1.3 TLS_")


class _Server:
    """A one-shot TLS server offering exactly ``ciphers`` on TLS 1.2 (a weak or a fake broker)."""

    def __init__(self, pki, ciphers: str) -> None:
        import threading
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"{ciphers}:@SECLEVEL=0")
        ctx.load_cert_chain(str(pki.broker_cert), str(pki.broker_key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

        def serve() -> None:
            conn, _ = self.sock.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("ciphers,ok", [("ECDHE-ECDSA-AES128-SHA", False), ("ECDHE-ECDSA-AES128-SHA256", False), ("ECDHE-ECDSA-AES256-SHA384", False),
                                        ("ECDHE-ECDSA-AES128-GCM-SHA256", True)])
def test_agent_and_receiver_client_context_refuses_weak_suites(pki, ciphers, ok):
    from wire.tls import client_context
    ctx = client_context(pki.ca, *pki.certs["dev-01"])  # the one context the uploader and the receiver use
    srv = _Server(pki, ciphers)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
            if ok:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.version() == "TLSv1.2" and tls.cipher()[0] == ciphers
            else:
                with pytest.raises(ssl.SSLError):
                    ctx.wrap_socket(raw, server_hostname="localhost")
    finally:
        srv.close()
