"""The init of a namespaces-tier environment's pid namespace: it reaps the orphans.

Every process whose parent exits is re-parented to the init of its pid namespace, which must
wait for it once it exits, or it stays a zombie holding a pid of the environment's pids limit:
children that fork and exit (double-fork daemons, ``sh -c 'sleep 0 &'``) piled up that way
while the runtime itself was pid 1. The runtime cannot reap them without taking exit statuses
from its own ``subprocess`` children, and a custom runtime's bootstrap is not ours to change.

So the zygote, having unshared a pid namespace, forks twice: first this init (pid 1), then the
environment (pid 2; a spare, ahead of demand, or a direct spawn). Both are the zygote's
children: the environment's exit status is the zygote's to read, as it always was, with no
translation. The init ignores SIGCHLD, so the kernel reaps each of its children as it exits
(and each zombie re-parented to it), and sleeps as ``/bin/sleep infinity``; it holds no fd
and runs nothing else. When the environment exits, the zygote kills the init, and the kernel
kills what is left in the namespace with it; when the init dies (killed with the
environment's cgroup, or with the zygote: its parent-death signal), the kernel kills the
environment.

It stays root in the zygote's mount and network namespaces, which its ``/proc`` entries would
show: the environment's ``/proc`` hides it (``hidepid=2``, ``confine.Confiner.enter_root``);
another uid cannot signal or trace it.

Stdlib only; runs only in a child forked by the zygote (never returns).
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

_PR_SET_PDEATHSIG = 1
#: What the init becomes once set up (coreutils' sleep; the interpreter waits if it is absent).
_SLEEPER = "/bin/sleep"


def serve(prctl: Callable[[int, int, int, int, int], int],
          join_cgroups: Callable[[], None]) -> NoReturn:
    """Become the init: set the parent-death signal with ``prctl`` (the zygote's libc
    ``prctl``), call ``join_cgroups()`` (so that the init is killed and counted with the
    environment), then reap until killed. A failure exits with 127, which takes the
    environment down with the namespace. Never returns."""
    try:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        join_cgroups()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # Ignored SIGCHLD: the kernel reaps this process's children as they exit.
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
    except BaseException:
        os._exit(127)
    # An ignored signal stays ignored across execve, and so do the parent-death signal and
    # the cgroups: a small sleeping program keeps all of it while giving back the pages a
    # forked interpreter copies as it runs (about 1.1 MiB of PSS per environment).
    try:
        os.execv(_SLEEPER, [_SLEEPER, "infinity"])
    except OSError:
        pass
    while True:
        signal.pause()
