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


def test_stored_notebook_outputs_load_nothing_from_the_internet():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"cdnjs\.cloudflare|cdn\.jsdelivr|unpkg\.com|huggingface\.co/|requirejs\.org")
    for folder in ("notebooks", "solutions", "exercises"):
        for notebook in (root / folder).glob("*.ipynb"):
            assert not pattern.search(notebook.read_text(encoding="utf-8")), f"{folder}/{notebook.name} reaches for the web"

