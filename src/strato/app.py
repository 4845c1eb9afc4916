"""The composition root: builds every component of an embedded strato and wires them.

Nothing else picks concrete backends. ``Application.start`` opens the stores, loads the
functions into the invoke path's registry, and starts listening; ``stop`` tears down in the
reverse order (environments first, then the servers, then the stores).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs

from strato.api.event_accept import EventAcceptor
from strato.api.event_invoke_api import EventInvokeConfigOperations
from strato.api.lambda_api import LambdaOperations
from strato.api.ledger_api import LedgerApi
from strato.api.logs_api import LogsApi
from strato.api.mapping_operations import MappingOperations
from strato.api.server import ApiServer
from strato.api.sqs_api import SqsApi
from strato.auth.setup import sigv4_verifier
from strato.codestore.filesystem import FilesystemCodeStore
from strato.config import Settings
from strato.domain.clock import Clock, ScaledClock, SystemClock
from strato.domain.event_source_mappings import EventSourceMapping
from strato.domain.models import LATEST, CodeRef, FunctionState, FunctionVersion, LastUpdateStatus
from strato.domain.runtimes import execution_env, python_version
from strato.errors import CodeStoreError, SandboxError
from strato.event_sources.invoker import ServiceInvoker
from strato.event_sources.manager import PollerManager
from strato.event_sources.sqs_poller import SqsPoller
from strato.http.request import Request
from strato.http.server import serve
from strato.queue.builtin import BuiltinQueueClient
from strato.queue.client import QueueRouter
from strato.queue.destinations import DestinationSender
from strato.queue.sqlite_events import SqliteEventStore
from strato.queue.worker import AsyncWorker, FunctionTarget
from strato.queue.writer import EventWriter
from strato.runtime_api.endpoints import RuntimeApiServer
from strato.sandbox import network_slots as egress_slots
from strato.sandbox import tiers
from strato.sandbox.base import EGRESS_INTERNET
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.local import ProcessSandbox
from strato.sandbox.network import EgressNetwork
from strato.sandbox.network_pool import NetnsPool
from strato.scheduler.pool import EnvironmentPool
from strato.services.aliases import AliasService
from strato.services.applier import EntryApplier
from strato.services.async_invocations import AsyncInvocationService
from strato.services.authorization import Authorizer, ResourcePolicyCache
from strato.services.concurrency import ConcurrencyService, ProvisionedState
from strato.services.event_invoke_configs import EventInvokeConfigCache, EventInvokeConfigService
from strato.services.event_source_mappings import EventSourceMappingService
from strato.services.functions import FunctionService
from strato.services.invocations import InvocationService
from strato.services.permissions import PermissionService
from strato.services.queues import QueueService
from strato.services.registry import FunctionRegistry, load_entry, resolve
from strato.services.tags import TagService
from strato.store.log_writer import BatchingLogWriter
from strato.store.secretbox import MASTER_KEY_FILE, SecretBox, master_key
from strato.store.sqlite import SqliteFunctionStore, SqliteLogStore
from strato.store.sqlite_aliases import SqliteAliasStore, SqliteProvisionedStore
from strato.store.sqlite_event_invoke_configs import SqliteEventInvokeConfigStore
from strato.store.sqlite_mappings import SqliteEventSourceMappingStore
from strato.store.sqlite_policies import SqlitePolicyStore
from strato.store.sqlite_queues import SqliteQueueStore

log = logging.getLogger(__name__)

_CODE_URL_TTL_S = 600


def _clock(scale: float, origin_file: Path) -> Clock:
    """The real clock, or with ``--time-scale`` a scaled one whose origin is kept in the data
    dir, so that the scaled time of one run goes on from the last instead of going back."""
    if scale == 1.0:
        return SystemClock()
    try:
        origin = float(json.loads(origin_file.read_text())["origin"])
    except (OSError, ValueError, KeyError, TypeError):
        origin = time.time()
        origin_file.write_text(json.dumps({"origin": origin}))
    return ScaledClock(scale, origin)


def _secret(path: Path) -> bytes:
    """A random key kept in the data dir (0600), created on first start."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


class Application:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.port
        self._server: asyncio.Server | None = None
        self._egress: EgressNetwork | None = None
        self._egress_slot: egress_slots.EgressSlot | None = None
        self._netns_pool: NetnsPool | None = None

    def _environment(
        self, version: FunctionVersion, address: str, stream: str, task_root: str,
        initialization_type: str,
    ) -> dict[str, str]:
        """Lambda's environment variables for an environment of ``version``;
        ``initialization_type`` is ``on-demand`` or ``provisioned-concurrency``
        (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html)."""
        region = self.settings.default_region
        variables = {
            **self._sandbox.path_variables(),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": task_root,
            "_HANDLER": version.handler,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": version.name,
            "AWS_LAMBDA_FUNCTION_VERSION": version.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(version.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": version.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "AWS_LAMBDA_RUNTIME_API": address,
        }
        if (runtime_env := execution_env(version.runtime)) is not None:
            variables["AWS_EXECUTION_ENV"] = runtime_env
        variables.update(version.environment)
        return variables

    def _code_url(self, record: FunctionVersion, base_url: str) -> str:
        expires = int(time.time()) + _CODE_URL_TTL_S
        sha = record.code.sha256_hex
        signature = hmac.new(self._url_key, f"{sha}:{expires}".encode(), hashlib.sha256).hexdigest()
        return f"{base_url}/_strato/code/{sha}.zip?expires={expires}&signature={signature}"

    def _serve_code(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        name = request.path.rsplit("/", 1)[-1]
        sha = name.removesuffix(".zip")
        query = parse_qs(request.query_string)
        expires = (query.get("expires") or ["0"])[0]
        given = (query.get("signature") or [""])[0]
        wanted = hmac.new(self._url_key, f"{sha}:{expires}".encode(), hashlib.sha256).hexdigest()
        if not expires.isdigit() or int(expires) < time.time() or not hmac.compare_digest(given, wanted):
            return 403, [("Content-Type", "text/plain")], b"Request has expired or is not signed"
        try:
            path = self._codestore.zip_path(CodeRef(sha, 0))
            return 200, [("Content-Type", "application/zip")], path.read_bytes()
        except (CodeStoreError, OSError):
            return 404, [("Content-Type", "text/plain")], b"No such package"

    def _health(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("Content-Type", "application/json")], b'{"status":"ok"}'

    def _notify(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        """A committed change of function ``name`` (on the control-plane thread): reload its
        entry and apply it on the loop's thread."""
        entry = load_entry(name, self._function_store, self._alias_store, self._provisioned_store)
        loop.call_soon_threadsafe(self._applier.apply, name, entry)

    def _prepare_runtime(self, record: FunctionVersion) -> None:
        version = python_version(record.runtime)
        if version not in self._prepared:
            self._prepared.add(version)
            asyncio.ensure_future(self._prepare(version))

    def _provisioned_state(self, loop: asyncio.AbstractEventLoop, function: str,
                           qualifier: str) -> ProvisionedState | None:
        """The pool's view of a provisioned configuration, read on the loop's thread."""
        async def read() -> ProvisionedState | None:
            try:
                status = self._pool.provisioned_status((function, qualifier))
            except KeyError:  # stored, not applied yet
                return None
            return ProvisionedState(status.allocated, status.available, status.status,
                                    status.reason)
        return asyncio.run_coroutine_threadsafe(read(), loop).result(timeout=10)

    def _defer(self, job: Callable[[], None]) -> None:
        self._control.submit(job)

    async def _prepare(self, python: str | None) -> None:
        try:
            await self._sandbox.prepare(python)
        except Exception as exc:  # a zygote that cannot start is reported at invoke
            log.warning("could not prepare runtime %s: %s", python, exc)

    async def start(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        data = settings.data_dir
        # Everything strato writes is its own: the store, keys and logs are never readable by
        # environments' uids (code trees are made readable explicitly, see codestore).
        os.umask(0o077)
        data.mkdir(parents=True, exist_ok=True)
        self._url_key = _secret(data / "code-url.key")
        #: The engine's clock: ages, retry waits, leases (``--time-scale`` speeds it up).
        self.clock: Clock = _clock(settings.time_scale, data / "clock-origin.json")
        box = SecretBox(master_key(data / MASTER_KEY_FILE))  # seals environment variables
        self._function_store = SqliteFunctionStore(data / "state.db", box=box)
        self._log_store = SqliteLogStore(data / "state.db")
        self._policy_store = SqlitePolicyStore(data / "state.db")
        self._alias_store = SqliteAliasStore(data / "state.db")
        self._provisioned_store = SqliteProvisionedStore(data / "state.db")
        policy_cache = ResourcePolicyCache(self._policy_store.list_policies())
        #: Decides whether a principal may act (the API server calls it); reads no database.
        self.authorizer = Authorizer(settings.account_id, policy_cache)
        permissions = PermissionService(
            self._policy_store, self._function_store, policy_cache,
            alias_revision=lambda name, alias: (
                found.revision_id if (found := self._alias_store.get_alias(name, alias)) else None),
        )
        self._codestore = FilesystemCodeStore(data / "code")
        self._interpreters = InterpreterRegistry(settings.interpreters)
        self._sandbox = self._make_sandbox(settings, data)
        self._log_writer = BatchingLogWriter(self._log_store,
                                             quota=settings.log_quota_mb * 1024 * 1024)
        self._control = ThreadPoolExecutor(1, thread_name_prefix="strato-control")
        self._queries = ThreadPoolExecutor(2, thread_name_prefix="strato-query")
        #: strato's built-in SQS-compatible queues (their own file, ``queues.db``): served on
        #: the API as SQS, and used by the engine through ``builtin_queues`` (a QueueClient).
        self.queue_service = QueueService(SqliteQueueStore(data / "queues.db"), self.clock,
                                          settings.account_id)
        self.builtin_queues = BuiltinQueueClient(self.queue_service, sender_id=settings.account_id)
        self._pool = EnvironmentPool(
            self._sandbox,
            RuntimeApiServer(limits=settings.http_limits),
            self._log_writer,
            self._environment,
            lambda version: str(self._codestore.unpacked(version.code)),
            keep_alive_s=settings.keep_alive_s,
            account_concurrency=settings.account_concurrency,
            burst=settings.burst_concurrency,
            burst_window_s=settings.burst_window_s,
            default_egress=settings.egress,
        )
        names: list[str] = []
        while batch := self._function_store.list_latest(after=names[-1] if names else None,
                                                        limit=500):
            names += [record.name for record in batch]
        entries = [e for e in (load_entry(n, self._function_store, self._alias_store,
                                          self._provisioned_store) for n in names) if e]
        self._registry = FunctionRegistry()
        self._prepared: set[str | None] = set()
        self._applier = EntryApplier(self._registry, self._pool, self._prepare_runtime)
        self._applier.load(entries)

        def notify(name: str) -> None:
            self._notify(loop, name)

        concurrency = ConcurrencyService(
            self._function_store, self._alias_store, self._provisioned_store,
            settings.account_concurrency, notify,
            lambda function, qualifier: self._provisioned_state(loop, function, qualifier),
        )

        self._event_config_store = SqliteEventInvokeConfigStore(data / "state.db")
        self._event_configs = EventInvokeConfigCache(self._event_config_store.list_configs())
        event_configs = EventInvokeConfigService(self._event_config_store, self._function_store,
                                                 self._alias_store, self._event_configs)

        def qualifier_deleted(name: str, qualifier: str | None) -> None:
            if qualifier is None:
                permissions.function_deleted(name)
                event_configs.function_deleted(name)
                return
            permissions.qualifier_deleted(name, qualifier)
            concurrency.qualifier_deleted(name, qualifier)
            event_configs.qualifier_deleted(name, qualifier)

        functions = FunctionService(
            self._function_store,
            self._codestore,
            self._interpreters,
            on_change=notify,
            defer=self._defer,
            on_delete=qualifier_deleted,
            aliases=self._alias_store,
        )
        aliases = AliasService(self._function_store, self._alias_store, notify,
                               on_delete=qualifier_deleted)
        # Finish whatever a previous run left Pending or InProgress.
        for entry in entries:
            for record in entry.records():
                if (record.state is FunctionState.PENDING
                        or record.last_update_status is LastUpdateStatus.IN_PROGRESS):
                    self._control.submit(functions.settle, record.name, record.revision_id,
                                         record.version)
        operations = LambdaOperations(
            functions, self._code_url, settings.account_concurrency, permissions=permissions,
            aliases=aliases, concurrency=concurrency, tags=TagService(self._function_store),
        )
        invocations = InvocationService(self._registry, self._pool)
        self._start_event_sources(loop, functions, invocations, operations)
        operations.table.update(EventInvokeConfigOperations(event_configs).table)
        acceptor, ledger = await self._start_async(invocations)
        logs_api = LogsApi(self._log_store, self._queries)
        verifier = None  # `--auth none`: the CLI warns that the API is unauthenticated
        if settings.auth != "none":
            verifier = sigv4_verifier(data, settings.account_id, settings.admin_credentials)
        api = ApiServer(
            operations,
            invocations,
            self._control,
            account=settings.account_id,
            default_region=settings.default_region,
            internal={"code": self._serve_code, "health": self._health},
            verifier=verifier,
            authorizer=self.authorizer,
            logs_api=logs_api.handle,
            sqs_api=SqsApi(self.queue_service, authorizer=self.authorizer),
            events=acceptor,
            signed_internal={"events": ledger.handle},
        )
        self._server = await serve(api.handle, api.body_limit, settings.host, settings.port,
                                   limits=settings.http_limits)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sandbox: %s", self._sandbox.description)

    def _async_target(self, name: str, qualifier: str | None) -> FunctionTarget | None:
        """What an asynchronous event of ``name`` through ``qualifier`` runs on now (read
        on the loop's thread from the registry and the event invoke configs)."""
        entry = self._registry.get(name)
        record = None if entry is None else resolve(entry, qualifier)
        if entry is None or record is None:
            return None
        return FunctionTarget(record, entry.reserved_concurrency,
                              self._event_configs.get(name, qualifier or LATEST))

    async def _start_async(self, invocations: InvocationService) -> tuple[EventAcceptor, LedgerApi]:
        """Asynchronous invocation: its queue (``events.db``, written through one
        group-commit writer), the worker that runs it, the sender of destination records and
        dead letters, and the edges that accept events and show the ledger."""
        settings = self.settings
        self._event_store = SqliteEventStore(settings.data_dir / "events.db")
        self._event_writer = EventWriter(self._event_store)

        def exists(name: str, qualifier: str | None) -> bool:
            return self._async_target(name, qualifier) is not None

        self._async_worker = AsyncWorker(
            self._event_writer, self._async_target, self._pool.invoke, self.clock,
            account=settings.account_id, account_concurrency=settings.account_concurrency,
            time_scale=settings.time_scale, on_deliveries=lambda: self._destinations.notify())
        # Destination and dead-letter queues go through ``self.queues`` (the QueueRouter);
        # while there is none, SQS deliveries fail and are retried.
        self._destinations = DestinationSender(
            self._event_writer, lambda: getattr(self, "queues", None), exists,
            self._async_worker.notify, self.clock, time_scale=settings.time_scale)
        await self._async_worker.start()
        self._destinations.start()
        accepted = AsyncInvocationService(invocations, self._event_writer, self.clock,
                                          self._async_worker.notify)
        ledger = LedgerApi(self._event_store, self._event_writer, self._queries, self.clock,
                           function_exists=exists, on_redrive=self._async_worker.notify,
                           authorizer=self.authorizer)
        return EventAcceptor(accepted), ledger

    def _start_event_sources(self, loop: asyncio.AbstractEventLoop, functions: FunctionService,
                             invocations: InvocationService, operations: LambdaOperations) -> None:
        """Event source mappings: the queues they poll (strato's own account's are built in,
        other accounts' on ``--sqs-endpoint``), their service on the control-plane thread
        (its operations join the Lambda API's table) and their pollers on the loop."""
        settings = self.settings
        external = None
        if settings.sqs_endpoint:
            # Imported only here: it brings botocore's client machinery (a few MB).
            from strato.queue.external import ExternalQueueClient

            external = ExternalQueueClient(
                settings.sqs_endpoint, region=settings.sqs_region or settings.default_region,
                access_key_id=settings.sqs_access_key_id,
                secret_access_key=settings.sqs_secret_access_key)
        self._external_queues = external
        self.queues = QueueRouter(settings.account_id, builtin=self.builtin_queues, external=external)
        invoker = ServiceInvoker(invocations)
        self._pollers = PollerManager(lambda mapping: SqsPoller(
            mapping, self.queues, invoker, settings.account_id, clock=self.clock))
        self._mapping_store = SqliteEventSourceMappingStore(settings.data_dir / "state.db")

        def queue_attributes(queue_arn: str) -> dict[str, str]:
            return asyncio.run_coroutine_threadsafe(self.queues.attributes(queue_arn),
                                                    loop).result(timeout=30)

        def mapping_changed(uuid: str, mapping: EventSourceMapping | None) -> None:
            loop.call_soon_threadsafe(self._pollers.apply, uuid, mapping)

        mappings = EventSourceMappingService(self._mapping_store, functions.get,
                                             queue_attributes, mapping_changed, self._defer)
        operations.table.update(MappingOperations(mappings).table)
        for mapping in mappings.recover():
            self._pollers.apply(mapping.uuid, mapping)

    def _make_sandbox(self, settings: Settings, data: Path) -> ProcessSandbox:
        """Probe the host, pick the sandbox tier, say loudly when it is not the default."""
        capabilities = tiers.probe()
        tier = tiers.choose(capabilities, settings.sandbox)
        if tier is tiers.Tier.FALLBACK:
            log.warning(
                "SANDBOX FALLBACK: %s. Environments share the host's file system view "
                "(narrowed by Landlock where present), network and /proc; run strato as root "
                "on a host with namespaces for the full sandbox (see `strato doctor`).",
                capabilities.namespaces or "namespaces are unavailable")
        elif tier is tiers.Tier.UNCONFINED:
            log.warning("UNSAFE: --unsafe-no-sandbox: function code runs unconfined, with "
                        "strato's own privileges. For development only.")
        if tier is tiers.Tier.FALLBACK:
            # Without a mount namespace, an environment reaches its code by its host path:
            # the directories on the way must be traversable (not listable) by its uid.
            for path in (data, data / "code", data / "code" / "trees"):
                path.mkdir(exist_ok=True)
                path.chmod(0o711)
            blocked = [p for p in data.resolve().parents if not p.stat().st_mode & 0o001]
            if blocked:
                log.warning("fallback tier: %s cannot be traversed by other users; functions "
                            "will not reach their code (chmod o+x it, or pick another "
                            "--data-dir)", blocked[0])
            for interpreter in [sys.executable]:
                real = Path(os.path.realpath(interpreter))
                hidden = [p for p in real.parents if not p.stat().st_mode & 0o001]
                if hidden:
                    log.warning("fallback tier: %s cannot be traversed by other users; "
                                "functions run by %s cannot import modules (install the "
                                "interpreter where other users can read it)", hidden[0], real)
        network = self._start_egress(settings) if tier is tiers.Tier.NAMESPACES else None
        return ProcessSandbox(
            self._interpreters,
            tier=tier,
            work_dir=str(data / "sandbox"),
            use_cgroups=settings.use_cgroups,
            limit_cpu=settings.limit_cpu,
            extra_binds=settings.sandbox_binds,
            network=network,
        )

    def _start_egress(self, settings: Settings) -> NetnsPool | None:
        """Internet egress for the namespaces tier, or None (no egress) with the reason."""
        if settings.egress != EGRESS_INTERNET:
            return None
        # A bridge, table and subnet of this server's own (network_slots.py).
        try:
            slot = egress_slots.claim(settings.egress_bridge, settings.egress_subnet)
        except (OSError, SandboxError) as exc:
            log.warning("NO INTERNET EGRESS: %s; environments get loopback only", exc)
            return None
        egress = EgressNetwork(slot.config)
        try:
            reason = egress.probe()
            if reason is not None:
                log.warning("NO INTERNET EGRESS: %s; environments get loopback only", reason)
                slot.release()
                return None
            egress.setup()
        except BaseException:
            slot.release()
            raise
        self._egress = egress
        self._egress_slot = slot
        self._netns_pool = NetnsPool(egress)
        self._netns_pool.start()
        return self._netns_pool

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._pollers.close()
        # Before the pool: invocations cut short by shutdown are not outcomes of their events.
        await self._async_worker.stop()
        await self._destinations.stop()
        await self._event_writer.close()
        await self.queue_service.close()
        await self._pool.close()
        await self._sandbox.close()
        if self._netns_pool is not None:
            await asyncio.to_thread(self._netns_pool.close)
        if self._egress is not None:
            await asyncio.to_thread(self._egress.teardown)
        if self._egress_slot is not None:
            self._egress_slot.release()
        self._control.shutdown(wait=True)
        self._queries.shutdown(wait=True)
        self._log_writer.close()
        self._function_store.close()
        self._log_store.close()
        self._policy_store.close()
        self._alias_store.close()
        self._mapping_store.close()
        self._event_config_store.close()
        self._event_store.close()
        if self._external_queues is not None:
            self._external_queues.close()
        self._provisioned_store.close()

