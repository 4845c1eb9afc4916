"""The fake sandbox keeps the ``Sandbox`` contract the pool relies on: a process killed at
any point exits, and a start cancelled midway leaves none of its ends open."""

from __future__ import annotations

import asyncio
import gc
import warnings

from strato.sandbox.base import EnvironmentSpec
from strato.sandbox.fake import FakeRuntime, FakeSandbox


async def _idle(runtime: FakeRuntime) -> None:
    await asyncio.Event().wait()


def _spec() -> EnvironmentSpec:
    return EnvironmentSpec(env_id="e1", python_version="3.12", argv=None, env={}, cwd="/code",
                           memory_mb=128, tmp_mb=512)


def test_a_process_killed_before_its_program_ran_exits() -> None:
    async def main() -> None:
        sandbox = FakeSandbox(_idle)
        process = await sandbox.start(_spec())
        process.kill()  # its program's task has not taken a step yet
        status = await asyncio.wait_for(process.exited, 5)
        assert status.signal is not None
        process.release()

    asyncio.run(main())


def test_a_cancelled_restart_leaves_no_socket_open() -> None:
    async def main() -> None:
        sandbox = FakeSandbox(_idle)
        first = await sandbox.start(_spec())
        first.kill()
        await first.exited
        restart = asyncio.ensure_future(sandbox.restart(first, _spec()))
        await asyncio.sleep(0)  # let it reach the fake's connection set-up, then cancel it
        restart.cancel()
        await asyncio.gather(restart, return_exceptions=True)
        first.release()
        await asyncio.wait_for(sandbox.close(), 5)
        stranded = [p for p in sandbox.processes
                    if p.runtime_channel is not None and p.runtime_channel.fileno() != -1]
        assert stranded == []

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        asyncio.run(main())
        gc.collect()
