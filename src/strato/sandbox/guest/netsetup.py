"""Network set-up a forked environment does for itself.

Runs inside the zygote under the function's interpreter: stdlib only, Python 3.10 to 3.13,
nothing imported from strato.

An environment in ``none`` egress mode has unshared a network namespace of its own, where
``lo`` exists but is down: ``bring_loopback_up`` makes 127.0.0.1 (and the Runtime API on it)
usable. An environment in ``internet`` mode joins a namespace the platform prepared
(``strato.sandbox.network_pool``), where ``lo`` is already up.
"""

import fcntl
import socket
import struct

_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_IFF_UP = 0x1
# struct ifreq: the interface name (IFNAMSIZ bytes), then a union whose ifr_flags member is
# a short; the union is 24 bytes on 64-bit Linux, 16 on 32-bit: 40 covers both.
_IFREQ = "16sH22x"


def bring_loopback_up() -> None:
    """Bring ``lo`` up in the calling process's network namespace (idempotent).
    Raises OSError when the process may not configure it (no CAP_NET_ADMIN there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        answer = fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0))
        flags = struct.unpack(_IFREQ, answer)[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))
