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


def test_child_processes_are_guarded_too():
    code = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=2)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "blocked" in result.stderr
