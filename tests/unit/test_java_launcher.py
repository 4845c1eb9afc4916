"""The Java runtimes' launcher, Java home discovery and the runtime client's build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strato.errors import InterpreterNotFoundError
from strato.sandbox.java_client import JAR_NAME, JavaRuntimeClient, sources_digest
from strato.sandbox.java_launcher import JavaLauncher
from strato.sandbox.jdks import JavaHomes, home_major, major_of
from strato.sandbox.launch import Launch


@pytest.mark.parametrize(("version", "major"), [
    ("17.0.15", 17), ("1.8.0_392", 8), ("25", 25), ("21.0.1+12-LTS", 21), ("", None)])
def test_major_versions_as_java_spells_them(version: str, major: int | None) -> None:
    assert major_of(version) == major


def _fake_home(root: Path, version: str) -> Path:
    home = root / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    for tool in ("java", "javac"):
        (home / "bin" / tool).write_text("#!/bin/sh\nexit 1\n")
        (home / "bin" / tool).chmod(0o755)
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


def test_an_explicit_home_is_used_only_for_its_own_major(tmp_path: Path) -> None:
    home = _fake_home(tmp_path, "21.0.4")
    assert home_major(str(home)) == 21
    homes = JavaHomes({21: str(home), 17: str(home)})
    assert homes.find(21) == os.path.realpath(home)
    assert homes.find(17) != os.path.realpath(home)


def test_a_missing_java_is_refused_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    homes = JavaHomes(jvm_dir="/nonexistent")
    with pytest.raises(InterpreterNotFoundError, match="openjdk-21-jre-headless.*STRATO_JAVA_21="):
        homes.require(21)
    client = JavaRuntimeClient(Path("/nonexistent/cache"), homes)
    with pytest.raises(InterpreterNotFoundError, match="openjdk-17-jdk-headless"):
        client.directory()


class _BuiltClient(JavaRuntimeClient):
    def __init__(self, directory: str) -> None:
        self._dir = directory

    def directory(self) -> str:
        return self._dir


def test_the_launch_shows_the_java_home_and_the_client_at_lambdas_paths(tmp_path: Path) -> None:
    home = _fake_home(tmp_path, "17.0.9")
    launcher = JavaLauncher(JavaHomes({17: str(home)}), _BuiltClient("/data/runtimes/java/abc"))
    real = os.path.realpath(home)
    views = ((real, "/var/lang"), ("/data/runtimes/java/abc", "/var/runtime"))
    assert launcher.launch("java17", "/var/task", True) == Launch(
        None, ("/bin/sh", "/var/runtime/bootstrap", "/var/lang", "/var/task", "/var/runtime"), views,
        runtime_dir="/var/runtime")
    # Without a root of its own, the environment reads the same directories at their host paths.
    assert launcher.launch("java17", "/data/code/f", False) == Launch(
        None, ("/bin/sh", "/data/runtimes/java/abc/bootstrap", real, "/data/code/f",
               "/data/runtimes/java/abc"), views, runtime_dir="/data/runtimes/java/abc")


def test_the_client_is_built_once_per_version_of_its_sources(tmp_path: Path) -> None:
    homes = JavaHomes()
    if homes.compiler(17) is None:
        pytest.skip("no javac of Java 17 or later on this host")
    client = JavaRuntimeClient(tmp_path / "java", homes)
    built = Path(client.directory())
    assert built.name == sources_digest(Path(__file__).resolve().parents[2] / "src/strato/runtimes/java")
    assert (built / JAR_NAME).is_file() and (built / "bootstrap").is_file()
    stamp = (built / JAR_NAME).stat().st_mtime_ns
    assert JavaRuntimeClient(tmp_path / "java", homes).directory() == str(built)
    assert (built / JAR_NAME).stat().st_mtime_ns == stamp


def test_the_sandbox_root_binds_debians_java_configuration() -> None:
    """A Debian Java home links into /etc/java-<N>-openjdk (jvm.cfg, java.security): the root
    of a namespaces-tier environment, and Landlock's read paths, must include it."""
    import glob

    from strato.sandbox.rootfs import readable_paths, system_binds
    configured = glob.glob("/etc/java-*")
    if not configured:
        pytest.skip("no /etc/java-* on this host")
    binds, _ = system_binds()
    for path in configured:
        assert [os.path.realpath(path), path, "dir"] in binds
        assert os.path.realpath(path) in readable_paths(binds)
