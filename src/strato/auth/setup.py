"""Authentication at start-up: the data dir's credentials, the first administrator, the verifier."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from strato.auth.credential_file import credentials_path
from strato.auth.credentials import Credential, parse_key_pair
from strato.auth.sigv4 import SessionLookup, SigV4Verifier
from strato.auth.store import CredentialStore, ensure_admin


def announce_admin(credential: Credential, out: TextIO) -> None:
    """Show a generated administrator key pair (the only time strato shows its secret)."""
    out.write(
        "strato: created an administrator access key; the secret is shown only this once:\n"
        f"  AWS_ACCESS_KEY_ID={credential.access_key_id}\n"
        f"  AWS_SECRET_ACCESS_KEY={credential.secret_access_key}\n"
        "strato: `strato credentials create` issues more keys, `strato credentials list` "
        "lists them.\n"
    )
    out.flush()


def sigv4_verifier(
    data_dir: Path, account_id: str, admin_key_pair: str | None, announce: TextIO | None = None,
    sessions: SessionLookup | None = None,
) -> SigV4Verifier:
    """A verifier over ``data_dir``'s credentials, after making sure an administrator exists.

    ``admin_key_pair`` is ``STRATO_ADMIN_CREDENTIALS`` (``ACCESS_KEY_ID:SECRET``): that pair
    is stored as an administrator's. Without it, a data dir with no credential gets a random
    administrator key pair, written to ``announce`` (stderr by default). Raises
    CredentialError for a malformed ``admin_key_pair`` or credentials file. ``sessions``
    resolves temporary credentials (role sessions).
    """
    seed = parse_key_pair(admin_key_pair) if admin_key_pair else None
    path = credentials_path(data_dir)
    created = ensure_admin(path, account_id, seed)
    if created is not None:
        announce_admin(created, announce or sys.stderr)
    return SigV4Verifier(CredentialStore(path), sessions=sessions)
