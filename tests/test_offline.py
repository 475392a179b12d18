"""The course runs offline: the suite's guard blocks the network, here and in child processes."""

import socket
import subprocess
import sys

import pytest


def test_outside_connection_is_blocked():
    with pytest.raises(ConnectionRefusedError, match="offline"):
        socket.create_connection(("93.184.216.34", 80), timeout=2)


def test_name_lookup_is_blocked():
    with pytest.raises(ConnectionRefusedError, match="offline"):
        socket.getaddrinfo("huggingface.co", 443)


def test_localhost_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    client.close()
    server.close()


LOOKALIKES = ["localhost.example.com", "127.0.0.1.nip.io", "127.evil.example", "0.0.0.0.example", "::1.example",
              "huggingface.co", b"pypi.org"]


@pytest.mark.parametrize("host", LOOKALIKES, ids=str)
@pytest.mark.parametrize("lookup", ["getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"])
def test_every_resolver_matches_hosts_exactly(lookup, host):
    call = getattr(socket, lookup)
    args = (host, 443) if lookup == "getaddrinfo" else (host,)
    with pytest.raises(ConnectionRefusedError, match="blocked"):
        call(*args)


def test_getnameinfo_and_create_connection_by_name_are_blocked():
    with pytest.raises(ConnectionRefusedError, match="blocked"):
        socket.getnameinfo(("93.184.216.34", 80), 0)
    with pytest.raises(ConnectionRefusedError, match="blocked"):
        socket.create_connection(("localhost.example.com", 80), timeout=2)


@pytest.mark.parametrize("family, address", [
    (socket.AF_INET, ("93.184.216.34", 80)), (socket.AF_INET, ("128.0.0.1", 80)),
    (socket.AF_INET6, ("2606:2800:220:1::", 80)), (socket.AF_INET6, ("::ffff:93.184.216.34", 80)),
])
@pytest.mark.parametrize("method", ["connect", "connect_ex"])
def test_sockets_of_both_families_cannot_reach_out(family, address, method):
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6 on this machine")
    with sock, pytest.raises(ConnectionRefusedError, match="blocked"):
        getattr(sock, method)(address)


def test_datagrams_to_outside_are_blocked_and_to_loopback_allowed():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ConnectionRefusedError, match="blocked"):
            sock.sendto(b"query", ("8.8.8.8", 53))
        with pytest.raises(ConnectionRefusedError, match="blocked"):
            sock.sendto(b"query", 0, ("1.1.1.1", 53))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
            receiver.bind(("127.0.0.1", 0))
            assert sock.sendto(b"hi", receiver.getsockname()) == 2


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", None])
def test_loopback_names_resolve(host):
    assert socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    if host and ":" not in host:
        assert socket.gethostbyname(host).startswith(("127.", "0.0.0.0"))


def test_loopback_over_ipv6_is_allowed():
    try:
        server = socket.socket(socket.AF_INET6)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    server.listen(1)
    with server, socket.create_connection(server.getsockname()[:2], timeout=2):
        pass


def test_child_processes_are_guarded_too():
    code = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=2)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "blocked" in result.stderr
    code = ("import socket\n"
            "for call in (socket.gethostbyname, socket.gethostbyname_ex, lambda h: socket.getaddrinfo(h, 80)):\n"
            "    try:\n        call('localhost.example.com')\n    except ConnectionRefusedError:\n        pass\n"
            "    else:\n        raise SystemExit('not blocked')\n"
            "print(socket.gethostbyname('localhost'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("127.")


def test_stored_notebook_outputs_load_nothing_from_the_internet():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"cdnjs\.cloudflare|cdn\.jsdelivr|unpkg\.com|huggingface\.co/|requirejs\.org")
    for folder in ("notebooks", "solutions"):  # exercises/ ships without outputs (tests/test_exercises.py)
        for notebook in (root / folder).glob("*.ipynb"):
            assert not pattern.search(notebook.read_text(encoding="utf-8")), f"{folder}/{notebook.name} reaches for the web"

