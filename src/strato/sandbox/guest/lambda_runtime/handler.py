"""Resolving the function's handler setting (``_HANDLER``) to a callable, once, during INIT.

``app.handler``, ``pkg.mod.handler`` and ``pkg/sub/mod.handler`` are accepted: path separators
become dots and the last dot splits module from function, as in AWS's Python runtime. Failures
raise ``Fault`` with the fault type and message AWS reports; any other exception raised while
the module is imported (user code at module level) propagates unchanged, and the caller
reports it under the exception's own class name.
"""

from __future__ import annotations

import importlib
import sys

from .faults import (
    BUILT_IN_MODULE_CONFLICT,
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    MALFORMED_HANDLER_NAME,
    USER_CODE_SYNTAX_ERROR,
    Fault,
)

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from typing import Any


def load_handler(setting: str) -> Any:
    """Import the handler's module and return the handler. Runs user code (module level)."""
    module_path, dot, function_name = setting.rpartition(".")
    if not dot:
        # AWS's message is the text of the ValueError from unpacking ``rsplit(".", 1)``.
        raise Fault(
            MALFORMED_HANDLER_NAME,
            f"Bad handler '{setting}': not enough values to unpack (expected 2, got 1)",
        )
    module_name = module_path.replace("/", ".")
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            BUILT_IN_MODULE_CONFLICT,
            f"Cannot use built-in module {module_path} as a handler module",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise Fault(
            IMPORT_MODULE_ERROR, f"Unable to import module '{module_path}': {exc}"
        ) from exc
    except SyntaxError as exc:
        frame = f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}'
        raise Fault(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_path}': {exc}", [frame]
        ) from exc
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault(
            HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_path}'"
        ) from None
