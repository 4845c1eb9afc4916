"""The ``strato`` command.

``strato serve`` runs the embedded platform; ``strato credentials`` manages the access keys
in a data dir's credentials file (the server need not run: it picks changes up within about a
second); every other command is a client of the HTTP API (like any AWS SDK), so it works
against a local or a remote strato alike.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path

from strato import __version__
from strato.cli import credentials, errors, events
from strato.config import Settings

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"
AUTH_MODES = ("sigv4", "none")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_environment(
        host=args.host, port=args.port, data_dir=args.data_dir, keep_alive_s=args.keep_alive,
        sandbox="unconfined" if args.unsafe_no_sandbox else args.sandbox, egress=args.egress,
        auth=args.auth, account_concurrency=args.account_concurrency,
        burst_concurrency=args.burst_concurrency, sqs_endpoint=args.sqs_endpoint,
        time_scale=args.time_scale, http_header_timeout_s=args.http_header_timeout,
        http_request_timeout_s=args.http_request_timeout,
        http_idle_timeout_s=args.http_idle_timeout, max_connections=args.max_connections,
        log_quota_mb=args.log_quota_mb, runtime_deps=args.runtime_deps,
        trust_unknown_roles=args.trust_unknown_roles or None,
        role_session_s=args.role_session_seconds,
        public_url=args.public_url, url_host=args.url_host,
    )


def _on_signal(stop: asyncio.Event) -> None:
    """SIGINT or SIGTERM: the first stops strato in order (environments torn down, the
    network and cgroups removed); a second one while that runs ends the process at once."""
    if not stop.is_set():
        stop.set()
        return
    print("strato: second signal, exiting now without cleaning up", file=sys.stderr, flush=True)
    os._exit(1)


def _serve(args: argparse.Namespace) -> int:
    from strato.app import Application

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = _settings(args)
    except ValueError as error:  # a setting out of range, or a variable that is not a number
        print(f"strato: {error}", file=sys.stderr)
        return 2
    if settings.auth not in AUTH_MODES:
        print(f"strato: STRATO_AUTH must be one of {', '.join(AUTH_MODES)}, not {settings.auth!r}",
              file=sys.stderr)
        return 2
    if not settings.time_scale > 0:
        print(f"strato: the time scale must be positive, not {settings.time_scale}",
              file=sys.stderr)
        return 2
    if settings.auth == "none":
        print(
            f"WARNING: --auth none: the API on {settings.host}:{settings.port} is UNAUTHENTICATED. "
            f"Every request acts as an administrator of account {settings.account_id}, whoever "
            "sends it. Use it only on a machine and network you trust.",
            file=sys.stderr, flush=True,
        )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def run() -> bool:
        app = Application(settings)
        try:
            await app.start()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            # The port is bound first: start made nothing to undo.
            print(f"strato: {settings.host}:{settings.port} is already in use (another strato "
                  "or another server listens there): stop it, or choose another port with "
                  "--port (`make run PORT=9001`)", file=sys.stderr, flush=True)
            return False
        # What start-up made (the AWS service models above all) lives as long as the server:
        # out of the collector's reach, a full collection takes microseconds, not tens of
        # milliseconds in the middle of an invoke.
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _on_signal, stop)
        print(
            f"strato {__version__} listening on http://{settings.host}:{app.port} "
            f"(data dir {settings.data_dir.resolve()})",
            flush=True,
        )
        await stop.wait()
        await app.stop()
        return True

    return 0 if asyncio.run(run()) else 1


def _doctor(args: argparse.Namespace) -> int:
    from strato.cli.doctor import report

    print(report(Settings.from_environment()))
    return 0


def _client(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    """A botocore client of ``endpoint``, signing with the credentials the AWS CLI would use
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``)."""
    import botocore.session

    session = botocore.session.get_session()
    if session.get_credentials() is None:
        raise SystemExit(f"strato: no AWS credentials to sign with: {errors.CREDENTIALS_HINT}")
    return session.create_client(
        service,
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
    )


def _logs(args: argparse.Namespace) -> int:
    """Print a function's log lines, oldest first; with --follow, keep printing new ones.
    A failed request is one line on stderr (``strato.cli.errors``), exit status 1."""
    try:
        return _print_logs(args)
    except Exception as error:
        line = errors.describe(error, args.endpoint_url)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1


def _print_logs(args: argparse.Namespace) -> int:
    logs = _client("logs", args.endpoint_url)
    # The function's LoggingConfig names its log group (``/aws/lambda/<name>`` unless set).
    configuration = _client("lambda", args.endpoint_url).get_function_configuration(
        FunctionName=args.function)
    group = configuration["LoggingConfig"]["LogGroup"]
    start = int((time.time() - args.since * 60) * 1000) if args.since else None
    token: str | None = None
    while True:
        request: dict[str, object] = {"logGroupName": group}
        if start is not None:
            request["startTime"] = start
        if token:
            request["nextToken"] = token
        page = logs.filter_log_events(**request)
        for event in page["events"]:
            # A message ends with its line's newline (as in CloudWatch Logs): print it as it is.
            print(event["message"], end="" if event["message"].endswith("\n") else "\n", flush=True)
        if page["events"]:
            token = page["events"][-1]["eventId"]
        elif page.get("nextToken"):
            token = page["nextToken"]
        if "nextToken" in page:
            continue
        if not args.follow:
            return 0
        time.sleep(0.5)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strato", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"strato {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run strato (embedded: SQLite, local sandboxes)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--data-dir", type=Path, default=None,
                       help="where state, code and logs live (default ./.strato)")
    serve.add_argument("--keep-alive", type=float, default=None,
                       help="seconds an idle execution environment stays warm (default 300)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--sandbox", choices=("auto", "namespaces", "fallback"), default=None,
                       help="confinement tier of execution environments (default auto: the "
                            "strongest this host allows; see `strato doctor`)")
    serve.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run function code unconfined (development only)")
    serve.add_argument("--egress", choices=("internet", "none"), default=None,
                       help="network egress of functions outside a VPC (default internet)")
    serve.add_argument("--auth", choices=AUTH_MODES, default=None,
                       help="API authentication: sigv4 (default; strato's access keys) or none "
                            "(unauthenticated, development only)")
    serve.add_argument("--account-concurrency", type=int, default=None,
                       help="the account's concurrent executions limit (default 1000)")
    serve.add_argument("--burst-concurrency", type=int, default=None,
                       help="new execution environments a function may get per 10 seconds "
                            "(default 1000, Lambda's scaling rate)")
    serve.add_argument("--time-scale", type=float, default=None,
                       help="run the asynchronous path's clock N times faster than real time "
                            "(retry waits, backoff, event ages; for tests; default 1)")
    serve.add_argument("--sqs-endpoint", default=None,
                       help="an external SQS-compatible endpoint for queues of other accounts "
                            "(event source mappings; STRATO_SQS_ENDPOINT)")
    serve.add_argument("--http-header-timeout", type=float, default=None,
                       help="seconds a client has to send a request's head, else 408 "
                            "(default 10; STRATO_HTTP_HEADER_TIMEOUT)")
    serve.add_argument("--http-request-timeout", type=float, default=None,
                       help="seconds a client has to send a whole request, else 408 "
                            "(default 120; STRATO_HTTP_REQUEST_TIMEOUT)")
    serve.add_argument("--http-idle-timeout", type=float, default=None,
                       help="seconds before an idle keep-alive connection is closed "
                            "(default 60; STRATO_HTTP_IDLE_TIMEOUT)")
    serve.add_argument("--max-connections", type=int, default=None,
                       help="connections served at once; more wait unread "
                            "(default 4096; STRATO_MAX_CONNECTIONS)")
    serve.add_argument("--log-quota-mb", type=int, default=None,
                       help="megabytes of logs each function keeps; its oldest log events are "
                            "deleted beyond it (default 64, at least 4; STRATO_LOG_QUOTA_MB)")
    serve.add_argument("--trust-unknown-roles", action="store_true", default=None,
                       help="functions whose execution role was not created through IAM may do "
                            "anything (default: nothing; development only; "
                            "STRATO_TRUST_UNKNOWN_ROLES=1)")
    serve.add_argument("--role-session-seconds", type=float, default=None,
                       help="lifetime of the role credentials each execution environment gets; "
                            "an environment is retired before they expire "
                            "(default 21600; STRATO_ROLE_SESSION_SECONDS)")
    serve.add_argument("--runtime-deps", type=Path, default=None,
                       help="the AWS SDKs every environment gets, as `make` installs them "
                            "(default <prefix>/strato-runtime-deps; STRATO_RUNTIME_DEPS)")
    serve.add_argument("--public-url", default=None,
                       help="strato's address as clients reach it, which function URLs start "
                            "with (default http://<host>:<port>, 127.0.0.1 when --host is "
                            "0.0.0.0; STRATO_PUBLIC_URL)")
    serve.add_argument("--url-host", default=None,
                       help="serve function URLs as host names <url id>.<URL_HOST> (point "
                            "*.<URL_HOST> at strato) instead of paths /lambda-url/<url id>/ "
                            "(STRATO_URL_HOST)")
    serve.set_defaults(run=_serve)

    credentials.add_parser(commands)
    events.add_parser(commands)

    doctor = commands.add_parser("doctor", help="what sandboxing this host allows")
    doctor.set_defaults(run=_doctor)

    logs = commands.add_parser("logs", help="print a function's logs")
    logs.add_argument("function")
    logs.add_argument("--follow", "-f", action="store_true")
    logs.add_argument("--since", type=float, default=None, help="minutes back to start from")
    logs.add_argument("--endpoint-url", default=os.environ.get("STRATO_ENDPOINT", DEFAULT_ENDPOINT))
    logs.set_defaults(run=_logs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
