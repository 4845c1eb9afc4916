"""Java functions for the e2e tests: handler sources compiled with the host's javac against
the runtime client's public interfaces (``strato/runtimes/java``), packaged as Lambda takes
them, and the recordings of AWS's Java runtimes (``aws_java_expectations.json``)."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.java_client import SOURCES
from strato.sandbox.jdks import JavaHomes
from tests.e2e.recordings import ACCOUNT, REGION, assert_matches

JAVA_RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_java_expectations.json").read_text())["expectations"]
HOMES = JavaHomes()


def java_recorded(key: str, **names: str) -> Any:
    """The value AWS recorded under ``key``, placeholders filled in."""
    text = json.dumps(JAVA_RECORDINGS[key]["value"])
    for placeholder, value in {"region": REGION, "account": ACCOUNT, **names}.items():
        text = text.replace(f"<<{placeholder}>>", value)
    return json.loads(text)


def assert_java_recorded(actual: Any, key: str, **names: str) -> None:
    assert_matches(actual, java_recorded(key, **names), path=key)


def require_java(major: int = 17) -> None:
    """Skip unless this host has Java ``major`` and a javac (fail in CI)."""
    import os
    missing = None
    if HOMES.find(major) is None:
        missing = f"no Java {major} on this host"
    elif HOMES.compiler(17) is None:
        missing = "no javac (a JDK) on this host"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


def compile_classes(work: Path, sources: dict[str, str]) -> dict[str, bytes]:
    """``sources`` (path → Java source) compiled for Java 17: class file path → bytes. The
    handler interfaces resolve against the runtime client's sources, whose classes are not
    part of the result (as with aws-lambda-java-core as a provided dependency)."""
    compiler = HOMES.compiler(17)
    assert compiler is not None
    src, out = work / "src", work / "classes"
    for name, text in sources.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    subprocess.run([compiler[0], "--release", "17", "-implicit:none", "-sourcepath", str(SOURCES),
                    "-d", str(out), *(str(src / name) for name in sources)],
                   check=True, capture_output=True, text=True)
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.class")}


def jar(files: dict[str, bytes]) -> bytes:
    """A jar (a zip with a manifest) of ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
