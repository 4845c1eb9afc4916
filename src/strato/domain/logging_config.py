"""A function's LoggingConfig: log format, log levels and log group.

https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html. With the
``Text`` format (the default) a function has no levels; with ``JSON`` it has an application
level (``TRACE`` < ``DEBUG`` < ``INFO`` < ``WARN`` < ``ERROR`` < ``FATAL``) and a system level
(``DEBUG`` < ``INFO`` < ``WARN``), both ``INFO`` unless given. Lambda keeps a record of the
chosen level and the less detailed ones. ``log_group`` None is the default group,
``/aws/lambda/<function name>``.

How a request changes the configuration (recorded as logcfg.* from AWS): members given
replace the current ones, members left out keep theirs; switching to ``JSON`` fills the
levels not given with ``INFO``, switching to ``Text`` drops them, and a level given while the
format is (or stays) ``Text`` is refused with AWS's InvalidParameterValueException.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from strato.domain.errors import InvalidParameterValueException

#: Application log levels from the most detailed to the least.
APPLICATION_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
#: System log levels from the most detailed to the least.
SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_LEVEL = "INFO"


class LogFormat(StrEnum):
    TEXT = "Text"
    JSON = "JSON"


@dataclass(frozen=True)
class LoggingConfig:
    """The logging configuration of a function version (levels only with ``JSON``)."""

    log_format: LogFormat = LogFormat.TEXT
    application_log_level: str | None = None
    system_log_level: str | None = None
    #: The log group, None for ``/aws/lambda/<function name>``.
    log_group: str | None = None

    @property
    def is_json(self) -> bool:
        return self.log_format is LogFormat.JSON


@dataclass(frozen=True)
class LoggingConfigChanges:
    """The members of a request's LoggingConfig; None means "not given"."""

    log_format: LogFormat | None = None
    application_log_level: str | None = None
    system_log_level: str | None = None
    log_group: str | None = None


def configure(current: LoggingConfig, changes: LoggingConfigChanges) -> LoggingConfig:
    """``current`` with ``changes`` applied (see the module docstring). Raises
    InvalidParameterValueException, changing nothing, for a level with the ``Text`` format.
    Enum values and the group's pattern were checked against the service model already."""
    log_format = changes.log_format or current.log_format
    group = current.log_group if changes.log_group is None else changes.log_group
    if log_format is LogFormat.TEXT:
        if changes.application_log_level is not None or changes.system_log_level is not None:
            raise InvalidParameterValueException(
                'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel '
                'from your request or change the LogFormat to "JSON" and try again.'
            )
        return LoggingConfig(LogFormat.TEXT, None, None, group)
    return LoggingConfig(
        LogFormat.JSON,
        changes.application_log_level or current.application_log_level or DEFAULT_LEVEL,
        changes.system_log_level or current.system_log_level or DEFAULT_LEVEL,
        group,
    )
