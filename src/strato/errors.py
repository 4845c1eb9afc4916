"""Internal errors of strato (not AWS API errors: those are in ``strato.domain.errors``).

Hierarchy::

    StratoError
    ├── ConfigError                 settings or host capabilities make start-up impossible
    ├── StoreError                  a repository could not do what was asked
    │   ├── AlreadyExistsError      the record to create is there already
    │   ├── NotFoundError           the record to change is not there
    │   ├── InUseError              the record to delete still has records that depend on it
    │   ├── RevisionMismatchError   compare-and-swap lost: another writer changed the record
    │   └── SealedSecretError       a sealed secret does not open: tampered with, sealed under
    │                               another master key, or bound to another record
    ├── CodeStoreError              a blob or unpacked tree is missing or unreadable
    └── SandboxError                an execution environment could not be started or confined
        └── InterpreterNotFoundError  no host interpreter for a runtime
"""

from __future__ import annotations


class StratoError(Exception):
    """Root of strato's internal exceptions."""


class ConfigError(StratoError):
    pass


class StoreError(StratoError):
    pass


class AlreadyExistsError(StoreError):
    pass


class NotFoundError(StoreError):
    pass


class InUseError(StoreError):
    pass


class RevisionMismatchError(StoreError):
    pass


class SealedSecretError(StoreError):
    pass


class CodeStoreError(StratoError):
    pass


class SandboxError(StratoError):
    pass


class InterpreterNotFoundError(SandboxError):
    pass
