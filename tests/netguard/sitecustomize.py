"""Block every network connection except to this machine, when ATTENTION_COURSE_BLOCK_NETWORK=1.

On PYTHONPATH (the test suite puts it there), this runs in every Python process the tests start,
notebook kernels included, so a notebook that tries to download anything fails loudly.
"""

import os

if os.environ.get("ATTENTION_COURSE_BLOCK_NETWORK") == "1":
    import socket

    _LOCAL_PREFIXES = ("127.", "::1", "localhost", "0.0.0.0")
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex

    class NetworkBlocked(ConnectionRefusedError):
        """The course must run offline: only localhost may be reached."""

    def _target_is_local(address) -> bool:
        if isinstance(address, (str, bytes)):  # a Unix socket path
            return True
        host = str(address[0])
        return host.startswith(_LOCAL_PREFIXES)

    def _guarded_connect(self, address):
        if self.family == socket.AF_UNIX or _target_is_local(address):
            return _connect(self, address)
        raise NetworkBlocked(f"network access to {address!r} blocked: the course must run offline")

    def _guarded_connect_ex(self, address):
        if self.family == socket.AF_UNIX or _target_is_local(address):
            return _connect_ex(self, address)
        raise NetworkBlocked(f"network access to {address!r} blocked: the course must run offline")

    def _guarded_getaddrinfo(host, *args, _real=socket.getaddrinfo, **kwargs):
        if host is None or str(host).startswith(_LOCAL_PREFIXES):
            return _real(host, *args, **kwargs)
        raise NetworkBlocked(f"name lookup of {host!r} blocked: the course must run offline")

    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
