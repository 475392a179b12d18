"""Block every network connection except to this machine, when ATTENTION_COURSE_BLOCK_NETWORK=1.

On PYTHONPATH (the test suite puts it there), this runs in every Python process the tests start,
notebook kernels included, so a notebook that tries to download anything fails loudly.

Hosts are matched exactly, never by prefix: ``localhost`` and loopback or unspecified addresses
(``127.0.0.0/8``, ``::1``, ``::ffff:127.x.y.z``, ``0.0.0.0``, ``::``) pass; ``localhost.example.com`` or
``127.evil.example`` do not. Every resolver entry point (``getaddrinfo``, ``gethostbyname``,
``gethostbyname_ex``, ``gethostbyaddr``, ``getnameinfo``) and every way a socket reaches out
(``connect``, ``connect_ex``, ``sendto``, ``sendmsg``; ``create_connection`` goes through these) is guarded.
"""

import os
import socket

if os.environ.get("ATTENTION_COURSE_BLOCK_NETWORK") == "1" and not hasattr(socket, "NetworkBlocked"):
    import ipaddress

    LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback", "localhost.localdomain"})

    class NetworkBlocked(ConnectionRefusedError):
        """The course must run offline: only this machine may be reached."""

    def is_local_host(host) -> bool:
        """True for exactly ``localhost`` (and its usual aliases) or a loopback/unspecified address."""
        if host is None:  # getaddrinfo(None, port): the local wildcard, used to bind servers
            return True
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("ascii", "replace")
        if not isinstance(host, str):
            return False
        host = host.strip()
        if host == "" or host.lower() in LOCAL_NAMES:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return False  # any other name: resolving it could reach a DNS server
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        return address.is_loopback or address.is_unspecified

    def _target_is_local(sock, address) -> bool:
        if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
            return True
        if isinstance(address, (str, bytes)):  # a Unix socket path
            return True
        if not isinstance(address, tuple) or not address:
            return False
        return is_local_host(address[0])

    def _blocked(what) -> NetworkBlocked:
        return NetworkBlocked(f"network access to {what!r} blocked: the course must run offline")

    _socket_class = socket.socket
    _real = {name: getattr(_socket_class, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")
             if hasattr(_socket_class, name)}

    def _guarded_connect(self, address):
        if not _target_is_local(self, address):
            raise _blocked(address)
        return _real["connect"](self, address)

    def _guarded_connect_ex(self, address):
        if not _target_is_local(self, address):
            raise _blocked(address)
        return _real["connect_ex"](self, address)

    def _guarded_sendto(self, data, *args):
        address = args[-1]  # sendto(data, address) or sendto(data, flags, address)
        if not _target_is_local(self, address):
            raise _blocked(address)
        return _real["sendto"](self, data, *args)

    def _guarded_sendmsg(self, buffers, ancdata=(), flags=0, address=None):
        if address is not None and not _target_is_local(self, address):
            raise _blocked(address)
        return _real["sendmsg"](self, buffers, ancdata, flags, *([address] if address is not None else []))

    def _guard_lookup(real, name):
        def guarded(host, *args, **kwargs):
            if not is_local_host(host):
                raise NetworkBlocked(f"name lookup of {host!r} blocked ({name}): the course must run offline")
            return real(host, *args, **kwargs)

        guarded.__name__ = guarded.__qualname__ = name
        guarded.__wrapped__ = real
        return guarded

    def _guarded_getnameinfo(sockaddr, flags, _real=socket.getnameinfo):
        if not (isinstance(sockaddr, tuple) and sockaddr and is_local_host(sockaddr[0])):
            raise _blocked(sockaddr)
        return _real(sockaddr, flags)

    _socket_class.connect = _guarded_connect
    _socket_class.connect_ex = _guarded_connect_ex
    _socket_class.sendto = _guarded_sendto
    if "sendmsg" in _real:
        _socket_class.sendmsg = _guarded_sendmsg
    for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        setattr(socket, _name, _guard_lookup(getattr(socket, _name), _name))
    socket.getnameinfo = _guarded_getnameinfo
    socket.NetworkBlocked = NetworkBlocked  # so tests (and curious readers) can name it
    socket.is_local_host = is_local_host
