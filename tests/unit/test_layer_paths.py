"""The search paths of an environment whose version has layers (``scheduler.layer_paths``)."""

from __future__ import annotations

from strato.scheduler.layer_paths import layer_variables


def test_lambda_entries_are_not_repeated_and_missing_ones_are_added() -> None:
    base = {"PATH": "/var/lang/bin:/usr/bin:/opt/bin", "LD_LIBRARY_PATH": "/lib64"}
    assert layer_variables(base, "/opt", "python3.12") == {
        "LD_LIBRARY_PATH": "/lib64:/opt/lib",
        "PYTHONPATH": "/opt/python/lib/python3.12/site-packages:/opt/python",
    }


def test_a_host_path_stands_for_opt_and_each_runtime_gets_its_own_path() -> None:
    changed = layer_variables({"PATH": "/usr/bin"}, "/data/merged/k", "nodejs20.x")
    assert changed == {"PATH": "/usr/bin:/data/merged/k/bin",
                       "LD_LIBRARY_PATH": "/data/merged/k/lib",
                       "NODE_PATH": "/data/merged/k/nodejs/node_modules"}
