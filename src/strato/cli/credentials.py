"""``strato credentials create | list | delete``: strato's access keys, in a data dir's file.

These commands change the credentials file directly (``strato.auth.credential_file``), so they
work whether or not a server runs; a running server sees the change within about a second.
A secret is printed once, by ``create``, and never again.

The data dir is ``--data-dir``, else ``$STRATO_DATA_DIR``, else the nearest ``.strato`` in the
current directory or one of its parents (as git finds ``.git``): the one ``make run`` uses when
the command runs anywhere in the project. A data dir named explicitly is used as given (keys
may be prepared before a server's first start on it); one looked for must hold a server's store
(``state.db``, made by its first start): these commands refuse rather than create a data dir
in the current directory, whose keys no server would read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strato.auth.credential_file import (
    add_credential,
    credentials_path,
    delete_credential,
    read_credentials,
)
from strato.auth.credentials import CredentialError, generate
from strato.config import Settings
from strato.domain.principals import ADMIN_POLICY

STORE = "state.db"


def find_data_dir(given: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The data dir the credentials commands work on (see the module's docstring); raises
    CredentialError, in one line that says what to do, when none is named and none found."""
    if given is None and "STRATO_DATA_DIR" in environ:
        given = Path(environ["STRATO_DATA_DIR"])
    if given is None:
        default = Settings().data_dir
        for directory in (cwd, *cwd.parents):
            if (directory / default / STORE).is_file():
                return directory / default
        raise CredentialError(
            f"no strato data dir ({default}/{STORE}) in {cwd} or its parents: run this in the "
            "directory where the server was started, or name its data dir with --data-dir or "
            "STRATO_DATA_DIR")
    return given


def _data_dir(args: argparse.Namespace) -> Path:
    return find_data_dir(args.data_dir, os.environ, Path.cwd())


def _policy(text: str | None) -> Mapping[str, Any]:
    """``--policy``: inline JSON (starting with ``{``) or the path of a JSON file."""
    if text is None:
        return ADMIN_POLICY
    try:
        source = text if text.lstrip().startswith("{") else Path(text).read_text()
        document = json.loads(source)
    except OSError as e:
        raise CredentialError(f"cannot read the policy file {text}: {e.strerror}") from e
    except ValueError as e:
        raise CredentialError(f"the policy is not JSON: {e}") from e
    if not isinstance(document, dict):
        raise CredentialError("a policy is a JSON object")
    return document


def _create(args: argparse.Namespace) -> int:
    account = args.account or Settings.from_environment().account_id
    credential = generate(account_id=account, name=args.name, policy=_policy(args.policy))
    add_credential(credentials_path(_data_dir(args)), credential)
    print(f"AWS_ACCESS_KEY_ID={credential.access_key_id}")
    print(f"AWS_SECRET_ACCESS_KEY={credential.secret_access_key}")
    print(f"# {credential.principal.arn}; the secret is not shown again", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = [("ACCESS KEY ID", "PRINCIPAL", "POLICY", "CREATED")]
    for credential in read_credentials(credentials_path(_data_dir(args))):
        policy = "admin" if credential.is_admin else "custom"
        rows.append((credential.access_key_id, credential.principal.arn, policy, credential.created))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]))
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not delete_credential(credentials_path(_data_dir(args)), args.access_key_id):
        print(f"strato: no access key {args.access_key_id}", file=sys.stderr)
        return 1
    print(f"deleted {args.access_key_id}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``credentials`` command; a CredentialError is reported, exit status 2."""
    try:
        return int(args.credentials_run(args))
    except CredentialError as e:
        print(f"strato: {e}", file=sys.stderr)
        return 2


def add_parser(commands: Any) -> None:
    """Add ``credentials`` and its commands to the ``strato`` sub-command parsers."""
    parser = commands.add_parser("credentials", help="create, list and delete access keys")
    parser.set_defaults(run=run)
    actions = parser.add_subparsers(dest="credentials_command", required=True)
    data_dir: dict[str, Any] = {
        "type": Path, "default": None,
        "help": "the server's data dir (default $STRATO_DATA_DIR, else the nearest .strato here or "
                "in a parent directory)",
    }

    create = actions.add_parser("create", help="issue an access key pair (the secret is printed once)")
    create.add_argument("--name", default="strato-user", help="user name in the principal's ARN")
    create.add_argument("--account", default=None,
                        help="12-digit account id (default $STRATO_ACCOUNT_ID or 000000000000)")
    create.add_argument("--policy", default=None,
                        help="identity policy: a JSON document or a file holding one "
                             "(default: administrator, every action on every resource)")
    create.add_argument("--data-dir", **data_dir)
    create.set_defaults(credentials_run=_create)

    listing = actions.add_parser("list", help="list access keys (never their secrets)")
    listing.add_argument("--data-dir", **data_dir)
    listing.set_defaults(credentials_run=_list)

    delete = actions.add_parser("delete", help="delete an access key")
    delete.add_argument("access_key_id")
    delete.add_argument("--data-dir", **data_dir)
    delete.set_defaults(credentials_run=_delete)
