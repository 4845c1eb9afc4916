"""fork(2) for the zygote and its children, without CPython's at-fork machinery.

``os.fork`` runs the interpreter's fork hooks: ``threading``, ``logging`` and ``random``
register Python callbacks, and the runtime state is re-initialised. In a child of the zygote
that execution writes to some 160 pages inherited from the zygote, which every environment
then holds as private copies: measured right after the fork (child stopped at once), 808 kB
of private dirty memory per child with ``os.fork``, 168 kB with the C library's ``fork``.

The hooks exist for processes with other threads, whose locks a child may inherit held. The
zygote and the children that fork again have a single thread and hold no interpreter lock
but the GIL (kept across the call: ``PyDLL``), so the child's state is already consistent.
What a hook would change that matters to user code is done by ``reseed_after_fork`` in the
child that becomes an environment: ``random``'s generator, which would otherwise produce the
same numbers in every environment. The C library's own fork handlers (OpenSSL's among
them) run either way.

Stdlib only; without ctypes, ``os.fork``.
"""

import os
import sys

try:
    import ctypes

    _LIBC_FORK = ctypes.PyDLL(None, use_errno=True).fork
    _LIBC_FORK.restype = ctypes.c_int
    _LIBC_FORK.argtypes = []
except (ImportError, AttributeError, OSError):
    _LIBC_FORK = None


def fork():
    """Fork the calling process (single-threaded); returns 0 in the child, the child's pid
    in the parent. Raises OSError."""
    if _LIBC_FORK is None:
        return os.fork()
    pid = _LIBC_FORK()
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"fork: {os.strerror(code)}")
    return pid


def reseed_after_fork():
    """What the interpreter's fork hooks would have done that user code can see: a fresh
    seed for ``random``'s shared generator (when the module was imported)."""
    module = sys.modules.get("random")
    if module is not None:
        module.seed()
