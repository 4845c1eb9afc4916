"""Lambda's search-path variables (``PATH``, ``LD_LIBRARY_PATH``, ``PYTHONPATH``,
``NODE_PATH``) for an environment of a runtime, given where its sandbox lays things out.

The values are Lambda's (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html,
and the environments of python3.14, nodejs18.x–22.x, java17 and provided.al2023 functions
recorded on AWS): every runtime gets ``PATH`` and ``LD_LIBRARY_PATH``; Python runtimes
``PYTHONPATH=$LAMBDA_RUNTIME_DIR``; Node.js runtimes ``NODE_PATH`` with the layers'
directories, the runtime's SDK and the function's code; Java and the OS-only runtimes
nothing more. Pure: no file system access.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Lambda's system directories, in Lambda's order (its ``/usr/bin/`` has the slash).
_SYSTEM_BIN = ("/usr/local/bin", "/usr/bin/", "/bin")
_SYSTEM_LIB = ("/lib64", "/usr/lib64")


@dataclass(frozen=True)
class EnvironmentLayout:
    """Where an environment finds its runtime, interpreter and layers.

    With a root of its own (namespaces tier) this is Lambda's layout: ``runtime_dir``
    ``/var/runtime`` (strato's runtime with the SDKs merged in), ``lang_dir`` ``/var/lang``
    and ``opt_dir`` ``/opt``. Without one (fallback and unconfined tiers) ``runtime_dir`` is
    the runtime's host path, there is no ``lang_dir`` (the interpreter's host directories
    stay off every path) and the SDKs are directories of their own (``python_sdk``,
    ``node_modules``), placed where Lambda has them in the search paths."""

    runtime_dir: str
    lang_dir: str | None = None
    opt_dir: str | None = None
    #: A directory of Python packages (boto3) not merged into ``runtime_dir``.
    python_sdk: str | None = None
    #: A ``node_modules`` of the Node.js SDK not merged into ``runtime_dir``.
    node_modules: str | None = None

    def variables(self, runtime: str, task_root: str) -> dict[str, str]:
        """``PATH``, ``LD_LIBRARY_PATH``, ``LAMBDA_RUNTIME_DIR`` and the search path of
        ``runtime``'s language, for an environment whose code is at ``task_root``."""
        lang, opt, runtime_dir = self.lang_dir, self.opt_dir, self.runtime_dir
        path = [f"{lang}/bin"] if lang else []
        path += [*_SYSTEM_BIN, *([f"{opt}/bin"] if opt else [])]
        libraries = [f"{lang}/lib"] if lang else []
        libraries += _SYSTEM_LIB
        if lang:  # without a root of its own the runtime directory holds no libraries
            libraries += [runtime_dir, f"{runtime_dir}/lib"]
        libraries += [task_root, f"{task_root}/lib", *([f"{opt}/lib"] if opt else [])]
        variables = {"PATH": ":".join(path), "LD_LIBRARY_PATH": ":".join(libraries),
                     "LAMBDA_RUNTIME_DIR": runtime_dir}
        if runtime.startswith("python"):
            variables["PYTHONPATH"] = ":".join(
                [runtime_dir, *([self.python_sdk] if self.python_sdk else [])])
        elif runtime.startswith("nodejs"):
            major = runtime.removeprefix("nodejs").split(".")[0]
            layers = [f"{opt}/nodejs/node{major}/node_modules", f"{opt}/nodejs/node_modules"]
            variables["NODE_PATH"] = ":".join([
                *(layers if opt else []), self.node_modules or f"{runtime_dir}/node_modules",
                runtime_dir, task_root])
        return variables
