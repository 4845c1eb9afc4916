"""fork(2) for the zygote and its children, without CPython's at-fork machinery; and the
copy-on-write faults a spare can take ahead of its environment.

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

Every environment writes to much the same few hundred pages inherited from the zygote (the
interpreter's hot objects and data): ``private_pages`` finds them in a running environment,
and ``prefault`` copies them in a spare before its environment needs them (some 600 faults
of 3 to 5 us each, measured on the cold start's path).

Stdlib only; without ctypes, ``os.fork`` and no prefaulting.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Iterable

_LIBC_FORK: ctypes._NamedFuncPointer | None
_LIBC_MADVISE: ctypes._NamedFuncPointer | None

try:
    import ctypes

    _LIBC_FORK = ctypes.PyDLL(None, use_errno=True).fork
    _LIBC_FORK.restype = ctypes.c_int
    _LIBC_FORK.argtypes = []
    _LIBC_MADVISE = ctypes.CDLL(None, use_errno=True).madvise
    _LIBC_MADVISE.restype = ctypes.c_int
    _LIBC_MADVISE.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
except (ImportError, AttributeError, OSError):
    _LIBC_FORK = _LIBC_MADVISE = None


def fork() -> int:
    """Fork the calling process (single-threaded); returns 0 in the child, the child's pid
    in the parent. Raises OSError."""
    if _LIBC_FORK is None:
        return os.fork()
    pid: int = _LIBC_FORK()
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"fork: {os.strerror(code)}")
    return pid


def reseed_after_fork() -> None:
    """What the interpreter's fork hooks would have done that user code can see: a fresh
    seed for ``random``'s shared generator (when the module was imported)."""
    module = sys.modules.get("random")
    if module is not None:
        module.seed()


_MADV_POPULATE_WRITE = 23
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def private_pages(pid: int, regions: Iterable[tuple[int, int]]) -> set[int]:
    """The pages of ``regions`` ([(start, end)] of the caller's own writable private
    mappings) that process ``pid``, forked from the caller, holds as private copies
    (present and mapped by it alone, from /proc/<pid>/pagemap): what it wrote since the
    fork, or what the caller did. Empty when the pagemap cannot be read."""
    pages: set[int] = set()
    try:
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except OSError:
        return pages
    try:
        for start, end in regions:
            count = (end - start) // _PAGE
            data = os.pread(fd, count * 8, start // _PAGE * 8)
            for index in range(len(data) // 8):
                entry = int.from_bytes(data[index * 8:index * 8 + 8], "little")
                if entry >> 63 & 1 and entry >> 56 & 1:  # present, exclusively mapped
                    pages.add(start + index * _PAGE)
    except OSError:
        pass
    finally:
        os.close(fd)
    return pages


def writable_regions() -> list[tuple[int, int]]:
    """[(start, end)] of the calling process's writable private mappings (heap, arenas, the
    interpreter's data)."""
    regions = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1].startswith("rw") and fields[1].endswith("p"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions.append((start, end))
    return regions


def ranges_of(pages: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted page addresses merged into [(start, length)]."""
    ranges: list[list[int]] = []
    for page in sorted(pages):
        if ranges and ranges[-1][0] + ranges[-1][1] == page:
            ranges[-1][1] += _PAGE
        else:
            ranges.append([page, _PAGE])
    return [(start, length) for start, length in ranges]


def prefault(ranges: Iterable[tuple[int, int]]) -> None:
    """Copy the pages of ``ranges`` now (MADV_POPULATE_WRITE, Linux 5.14+): a spare takes, in
    advance, the copy-on-write faults its environment would otherwise take on the cold
    start's path, on pages every environment writes anyway. A range no longer mapped is
    skipped; a kernel without the advice makes this a no-op."""
    if _LIBC_MADVISE is None:
        return
    for start, length in ranges:
        if _LIBC_MADVISE(start, length, _MADV_POPULATE_WRITE) != 0 \
                and ctypes.get_errno() == 22:  # EINVAL: the kernel does not know the advice
            return
