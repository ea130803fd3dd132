"""Optional TLS: with [http] tls_cert/tls_key the panel is HTTPS and the WebSocket WSS, nothing else changes."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import trustme
import websockets

from tests.panel_env import panel_env


async def test_with_a_certificate_the_panel_speaks_https_and_wss(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "panel.crt", tmp_path / "panel.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    async with panel_env(["01-direct-answered"],
                         http_extra=f'tls_cert = "{cert_file}"\ntls_key = "{key_file}"') as env:
        assert env.url.startswith("https://")
        async with httpx.AsyncClient(base_url=env.url, verify=client_ssl) as http:
            response = await http.post("/api/login", json={"name": "anna", "password": "anna-password-1"})
            assert response.status_code == 200
            assert "Secure" in response.headers["set-cookie"]
            cookie = response.cookies["cti_session"]
        async with httpx.AsyncClient(base_url=env.url.replace("https", "http", 1)) as plain:
            try:
                await plain.get("/login")
                raise AssertionError("plain HTTP must not be served on the TLS port")
            except httpx.HTTPError:
                pass
        async with websockets.connect(env.ws_url, ssl=client_ssl,
                                      additional_headers={"Cookie": f"cti_session={cookie}"}) as conn:
            assert json.loads(await conn.recv())["user"]["name"] == "anna"


def test_a_certificate_without_its_key_is_a_config_error(tmp_path: Path) -> None:
    from companion.config import ConfigError, parse_config

    try:
        parse_config({"http": {"tls_cert": str(tmp_path / "a.crt")}}, tmp_path / "cti.toml")
    except ConfigError as exc:
        assert "http" in str(exc) and "tls_key" in str(exc)
    else:
        raise AssertionError("a lone tls_cert must be refused")


def test_the_panel_listens_with_a_tcp_socket_so_asyncio_turns_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on accepted sockets whose protocol is TCP; with Nagle on, a pop sent
    right after another message waited 40 ms for the client's delayed ACK."""
    import socket

    from ui_bridge.server import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        assert accepted.proto == socket.IPPROTO_TCP
        accepted.close()
        client.close()
    finally:
        sock.close()
