"""Runtime identifiers: which AWS runtimes exist and which strato can run."""

from __future__ import annotations

from enum import Enum


class RuntimeFamily(Enum):
    PYTHON = "python"  # strato's built-in Python runtime, forked from a warm interpreter
    PROVIDED = "provided"  # an executable ``bootstrap`` in the package (custom runtime)
    NODE = "nodejs"  # the host's node of the runtime's major version, running strato's client
    JAVA = "java"  # the host's Java of the runtime's major version runs strato's Java client


#: Every runtime identifier AWS Lambda accepts today (the enum AWS lists in its
#: InvalidParameterValueException for an unknown runtime).
AWS_RUNTIMES: tuple[str, ...] = (
    "nodejs20.x", "python3.14", "provided.al2023", "python3.12", "python3.13", "nodejs24.x",
    "nodejs22.x", "java25", "python3.10", "python3.11", "java21", "ruby3.3", "ruby3.4",
    "ruby3.2", "python3.8", "python3.9", "java17", "nodejs16.x", "dotnet10", "dotnet8",
    "java11", "dotnet6", "nodejs18.x", "provided.al2", "java8.al2",
)

#: The runtimes strato runs, and how.
SUPPORTED: dict[str, RuntimeFamily] = {
    "python3.10": RuntimeFamily.PYTHON,
    "python3.11": RuntimeFamily.PYTHON,
    "python3.12": RuntimeFamily.PYTHON,
    "python3.13": RuntimeFamily.PYTHON,
    "provided.al2023": RuntimeFamily.PROVIDED,
    "provided.al2": RuntimeFamily.PROVIDED,
    "nodejs18.x": RuntimeFamily.NODE,
    "nodejs20.x": RuntimeFamily.NODE,
    "nodejs22.x": RuntimeFamily.NODE,
    "java17": RuntimeFamily.JAVA,
    "java21": RuntimeFamily.JAVA,
    "java25": RuntimeFamily.JAVA,
}


def python_version(runtime: str) -> str | None:
    """``"python3.12"`` → ``"3.12"``; None for a runtime that is not a Python one."""
    if SUPPORTED.get(runtime) is RuntimeFamily.PYTHON:
        return runtime.removeprefix("python")
    return None


def node_major(runtime: str) -> str | None:
    """``"nodejs20.x"`` → ``"20"``; None for a runtime that is not a Node.js one."""
    if SUPPORTED.get(runtime) is RuntimeFamily.NODE:
        return runtime.removeprefix("nodejs").removesuffix(".x")
    return None


def java_major(runtime: str) -> int | None:
    """``"java21"`` → 21; None for a runtime that is not a Java one strato runs."""
    if SUPPORTED.get(runtime) is RuntimeFamily.JAVA:
        return int(runtime.removeprefix("java"))
    return None


def execution_env(runtime: str) -> str | None:
    """``AWS_EXECUTION_ENV`` of ``runtime``'s environments: ``AWS_Lambda_<runtime>``, or None
    for the OS-only ``provided.*`` runtimes, where AWS does not set it (recorded environment
    of a provided.al2023 function)."""
    return None if SUPPORTED.get(runtime) is RuntimeFamily.PROVIDED else f"AWS_Lambda_{runtime}"
