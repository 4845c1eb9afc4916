"""The composition root: builds every component of an embedded strato and wires them.

Nothing else picks concrete backends. ``Application.start`` opens the stores, loads the
functions into the invoke path's registry, and starts listening; ``stop`` tears down in the
reverse order (environments first, then the servers, then the stores).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from strato.api.code_download import CodeDownload
from strato.api.event_accept import EventAcceptor
from strato.api.event_invoke_api import EventInvokeConfigOperations
from strato.api.function_url_edge import FunctionUrlEdge
from strato.api.iam_api import IamApi
from strato.api.lambda_api import LambdaOperations
from strato.api.layer_operations import LayerOperations
from strato.api.ledger_api import LedgerApi
from strato.api.logs_api import LogsApi
from strato.api.mapping_operations import MappingOperations
from strato.api.platform_endpoint import PlatformEndpoint
from strato.api.server import ApiServer
from strato.api.sqs_api import SqsApi
from strato.api.url_operations import FunctionUrlOperations
from strato.async_invoke.destinations import DestinationSender
from strato.async_invoke.sqlite_events import SqliteEventStore
from strato.async_invoke.worker import AsyncWorker
from strato.async_invoke.writer import EventWriter
from strato.auth.role_sessions import RoleSessions
from strato.auth.setup import sigv4_verifier
from strato.codestore.filesystem import FilesystemCodeStore
from strato.codestore.signed_urls import CodeUrlSigner, load_key
from strato.config import Settings
from strato.domain.arns import Scope
from strato.domain.clock import Clock
from strato.domain.clock_origin import engine_clock
from strato.domain.function_urls import UrlScheme
from strato.domain.models import FunctionState, FunctionVersion, LastUpdateStatus
from strato.domain.runtimes import RuntimeFamily, python_version
from strato.event_sources.invoker import ServiceInvoker
from strato.event_sources.loop_side import LoopSide
from strato.event_sources.manager import PollerManager
from strato.event_sources.sqs_poller import SqsPoller
from strato.http.request import Request
from strato.http.server import serve_socket
from strato.runtime_api.endpoints import RuntimeApiServer
from strato.sandbox.base import EGRESS_INTERNET
from strato.sandbox.internet_egress import InternetEgress
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.java_client import JavaRuntimeClient
from strato.sandbox.java_launcher import JavaLauncher
from strato.sandbox.jdks import JavaHomes
from strato.sandbox.launch import BootstrapLauncher, Launchers, PythonLauncher
from strato.sandbox.local import ProcessSandbox
from strato.sandbox.node_installations import NodeRegistry
from strato.sandbox.node_launcher import NodeLauncher
from strato.sandbox.runtime_deps import find_runtime_deps
from strato.sandbox.tier_setup import start_tier
from strato.sandbox.tiers import Tier
from strato.scheduler.environment_variables import LambdaVariables
from strato.scheduler.layer_paths import LayerPlacement
from strato.scheduler.pool import EnvironmentPool
from strato.services.aliases import AliasService
from strato.services.applier import EntryApplier
from strato.services.async_invocations import AsyncInvocationService
from strato.services.async_targets import AsyncTargets
from strato.services.authorization import Authorizer, ResourcePolicyCache
from strato.services.concurrency import ConcurrencyService, ProvisionedState
from strato.services.event_invoke_configs import EventInvokeConfigCache, EventInvokeConfigService
from strato.services.event_ledger import EventLedgerService
from strato.services.event_source_mappings import EventSourceMappingService
from strato.services.execution_roles import ExecutionRoles, endpoint_url
from strato.services.function_urls import FunctionUrlService
from strato.services.functions import FunctionService
from strato.services.invocations import InvocationService
from strato.services.layers import LayerService
from strato.services.logs import LogService
from strato.services.permissions import PermissionService
from strato.services.registry import FunctionRegistry, load_entry
from strato.services.roles import RoleDirectory, RoleService
from strato.services.sqs_queues import QueueService
from strato.services.tags import TagService
from strato.services.url_directory import UrlDirectoryCache
from strato.sqs.builtin import BuiltinQueueClient
from strato.sqs.client import QueueRouter
from strato.store.log_writer import BatchingLogWriter
from strato.store.secretbox import MASTER_KEY_FILE, SecretBox, master_key
from strato.store.sqlite import SqliteFunctionStore, SqliteLogStore
from strato.store.sqlite_aliases import SqliteAliasStore, SqliteProvisionedStore
from strato.store.sqlite_event_invoke_configs import SqliteEventInvokeConfigStore
from strato.store.sqlite_layers import SqliteLayerStore
from strato.store.sqlite_mappings import SqliteEventSourceMappingStore
from strato.store.sqlite_policies import SqlitePolicyStore
from strato.store.sqlite_queues import SqliteQueueStore
from strato.store.sqlite_roles import SqliteRoleStore
from strato.store.sqlite_urls import SqliteFunctionUrlConfigStore

log = logging.getLogger(__name__)

class Application:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.port
        self._server: asyncio.Server | None = None
        self._egress = InternetEgress()

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
        if record.runtime not in self._prepared:
            # What a runtime needs on this host, found (or built: Java's runtime client, once
            # per strato version) off the loop, before its first cold start asks for it.
            self._prepared.add(record.runtime)
            asyncio.ensure_future(self._require(record.runtime))

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

    async def _require(self, runtime: str) -> None:
        try:
            await asyncio.to_thread(self._launchers.require, runtime)
        except Exception as exc:  # refused again, with the reason, at the cold start
            log.warning("runtime %s cannot run on this host: %s", runtime, exc)

    async def _prepare(self, python: str | None) -> None:
        try:
            await self._sandbox.prepare(python)
        except Exception as exc:  # a zygote that cannot start is reported at invoke
            log.warning("could not prepare runtime %s: %s", python, exc)

    async def start(self) -> None:
        """Build and start everything. Raises OSError (EADDRINUSE) before making anything
        when the API's address is taken."""
        settings = self.settings
        # The API's socket first: environments are told its port (``AWS_ENDPOINT_URL``), and
        # a taken port is reported before anything was made.
        listening = socket.create_server((settings.host, settings.port), backlog=1024)
        self.port = listening.getsockname()[1]
        loop = asyncio.get_running_loop()
        data = settings.data_dir
        # Everything strato writes is its own: the store, keys and logs are never readable by
        # environments' uids (code trees are made readable explicitly, see codestore).
        os.umask(0o077)
        data.mkdir(parents=True, exist_ok=True)
        #: The engine's clock: ages, retry waits, leases (``--time-scale`` speeds it up).
        self.clock: Clock = engine_clock(settings.time_scale, data / "clock-origin.json")
        box = SecretBox(master_key(data / MASTER_KEY_FILE))  # seals environment variables
        self._function_store = SqliteFunctionStore(data / "state.db", box=box)
        self._log_store = SqliteLogStore(data / "state.db")
        self._policy_store = SqlitePolicyStore(data / "state.db")
        self._alias_store = SqliteAliasStore(data / "state.db")
        self._provisioned_store = SqliteProvisionedStore(data / "state.db")
        #: IAM roles (their own file, ``iam.db``) and the credentials of their sessions.
        self._role_store = SqliteRoleStore(data / "iam.db")
        role_directory = RoleDirectory(settings.account_id)
        role_directory.load(self._role_store)
        role_sessions = RoleSessions(settings.account_id, role_directory,
                                     lifetime_s=settings.role_session_s,
                                     trust_unknown_roles=settings.trust_unknown_roles)
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
        tier = start_tier(settings.sandbox, data)
        network = None
        if tier is Tier.NAMESPACES and settings.egress == EGRESS_INTERNET:
            network = self._egress.start(settings.egress_bridge, settings.egress_subnet)
        runtime_deps = find_runtime_deps(settings.runtime_deps)
        self._sandbox = ProcessSandbox(
            self._interpreters, tier=tier, work_dir=str(data / "sandbox"),
            use_cgroups=settings.use_cgroups, limit_cpu=settings.limit_cpu,
            extra_binds=settings.sandbox_binds, network=network, platform_api_port=self.port,
            runtime_deps=runtime_deps, standbys=settings.standbys,
        )
        java_homes = JavaHomes(settings.java_homes)
        self._launchers = Launchers({
            RuntimeFamily.PYTHON: PythonLauncher(self._interpreters),
            RuntimeFamily.PROVIDED: BootstrapLauncher(),
            RuntimeFamily.NODE: NodeLauncher(NodeRegistry(settings.node_installations),
                                             runtime_deps.nodejs),
            RuntimeFamily.JAVA: JavaLauncher(
                java_homes, JavaRuntimeClient(data / "runtimes" / "java", java_homes)),
        }, shown=self._sandbox.shows_views)
        platform_endpoint = PlatformEndpoint(settings.http_limits)
        execution_roles = ExecutionRoles(
            role_sessions, endpoint_url(self._sandbox.platform_api, settings.host, self.port))
        code = CodeDownload(CodeUrlSigner(load_key(data / "code-url.key")), self._codestore)
        layer_placement = LayerPlacement(self._codestore.merged, shown=self._sandbox.shows_views)
        self._layer_store = SqliteLayerStore(data / "layers.db")
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
            RuntimeApiServer(limits=settings.http_limits, platform_api=platform_endpoint),
            self._log_writer,
            LambdaVariables(self._sandbox, settings.default_region, execution_roles,
                            layers=layer_placement),
            lambda version: str(self._codestore.unpacked(version.code)),
            keep_alive_s=settings.keep_alive_s,
            account_concurrency=settings.account_concurrency,
            burst=settings.burst_concurrency,
            burst_window_s=settings.burst_window_s,
            default_egress=settings.egress,
            launchers=self._launchers,
            max_environment_age_s=settings.role_session_s,
            layers=layer_placement,
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

        #: Where function URLs live (``FunctionUrl``s are written with it and requests
        #: matched by it) and every URL's configuration by URL id (read by the URL edge).
        self.url_scheme = UrlScheme(settings.public_base(self.port), settings.url_host)
        self.url_directory = UrlDirectoryCache()
        self._url_store = SqliteFunctionUrlConfigStore(data / "urls.db")
        function_urls = FunctionUrlService(self._url_store, self._function_store,
                                           self._alias_store, self.url_directory)
        function_urls.recover()

        self._event_config_store = SqliteEventInvokeConfigStore(data / "state.db")
        self._event_configs = EventInvokeConfigCache(self._event_config_store.list_configs())
        event_configs = EventInvokeConfigService(self._event_config_store, self._function_store,
                                                 self._alias_store, self._event_configs)

        def qualifier_deleted(name: str, qualifier: str | None) -> None:
            if qualifier is None:
                permissions.function_deleted(name)
                event_configs.function_deleted(name)
                function_urls.function_deleted(name)
                return
            permissions.qualifier_deleted(name, qualifier)
            concurrency.qualifier_deleted(name, qualifier)
            event_configs.qualifier_deleted(name, qualifier)
            function_urls.qualifier_deleted(name, qualifier)

        functions = FunctionService(
            self._function_store,
            self._codestore,
            self._launchers,
            on_change=notify,
            defer=self._defer,
            on_delete=qualifier_deleted,
            aliases=self._alias_store,
            other_code=self._layer_store.code_references,
        )
        layers = LayerService(self._layer_store, self._codestore, self._defer,
                              functions.collect_code)
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
            functions, code.url, settings.account_concurrency, permissions=permissions,
            aliases=aliases, concurrency=concurrency, tags=TagService(self._function_store),
            layers=layers,
        )
        operations.table.update(LayerOperations(layers, code.package_url).table)
        invocations = InvocationService(self._registry, self._pool)
        self._start_event_sources(loop, functions, invocations, operations)
        operations.table.update(EventInvokeConfigOperations(event_configs).table)
        operations.table.update(FunctionUrlOperations(function_urls, self.url_scheme).table)
        acceptor, ledger = await self._start_async(invocations)
        logs_api = LogsApi(LogService(self._log_store), self._queries)
        verifier = None  # `--auth none`: the CLI warns that the API is unauthenticated
        if settings.auth != "none":
            verifier = sigv4_verifier(data, settings.account_id, settings.admin_credentials,
                                      sessions=role_sessions)
        api = ApiServer(
            operations,
            invocations,
            self._control,
            account=settings.account_id,
            default_region=settings.default_region,
            internal={"code": code.handle, "health": self._health},
            verifier=verifier,
            authorizer=self.authorizer,
            logs_api=logs_api.handle,
            sqs_api=SqsApi(self.queue_service, authorizer=self.authorizer),
            iam_api=IamApi(RoleService(self._role_store, role_directory), role_directory,
                           self._control, account_id=settings.account_id,
                           authorizer=self.authorizer),
            events=acceptor,
            signed_internal={"events": ledger.handle},
            urls=FunctionUrlEdge(self.url_scheme, self.url_directory, invocations,
                                 Scope(settings.default_region, settings.account_id),
                                 verifier=verifier, authorizer=self.authorizer,
                                 policies=policy_cache),
        )
        platform_endpoint.bind(api.handle, api.body_limit)
        self._server = await serve_socket(api.handle, api.body_limit, listening,
                                          limits=settings.http_limits)
        log.info("sandbox: %s", self._sandbox.description)

    async def _start_async(self, invocations: InvocationService) -> tuple[EventAcceptor, LedgerApi]:
        """Asynchronous invocation: its queue (``events.db``, written through one
        group-commit writer), the worker that runs it, the sender of destination records and
        dead letters, and the edges that accept events and show the ledger."""
        settings = self.settings
        self._event_store = SqliteEventStore(settings.data_dir / "events.db")
        self._event_writer = EventWriter(self._event_store)
        targets = AsyncTargets(self._registry, self._event_configs)
        exists = targets.exists
        self._async_worker = AsyncWorker(
            self._event_writer, targets, self._pool.invoke, self.clock,
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
        ledger = LedgerApi(
            EventLedgerService(self._event_store, self._event_writer, self.clock,
                               function_exists=exists, on_redrive=self._async_worker.notify),
            self._queries, authorizer=self.authorizer)
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
            from strato.sqs.external import ExternalQueueClient

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
        loop_side = LoopSide(loop, self.queues, self._pollers)
        mappings = EventSourceMappingService(self._mapping_store, functions.get,
                                             loop_side.queue_attributes,
                                             loop_side.mapping_changed, self._defer)
        operations.table.update(MappingOperations(mappings).table)
        self._pollers.recover(mappings.recover())

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
        await self._egress.close()
        self._control.shutdown(wait=True)
        self._queries.shutdown(wait=True)
        self._log_writer.close()
        self._function_store.close()
        self._layer_store.close()
        self._log_store.close()
        self._policy_store.close()
        self._alias_store.close()
        self._mapping_store.close()
        self._event_config_store.close()
        self._url_store.close()
        self._event_store.close()
        if self._external_queues is not None:
            self._external_queues.close()
        self._provisioned_store.close()
        self._role_store.close()

