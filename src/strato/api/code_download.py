"""The edge that serves code packages at their presigned URLs (``/_strato/code/<sha>.zip``).

An internal route of ``api.server`` (no SigV4: the URL's own signature is the credential, as
with an S3 presigned URL). An expired, forged or unsigned URL gets 403; a package the code
store does not hold, 404.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from strato.codestore.base import CodeStore
from strato.codestore.signed_urls import CodeUrlSigner
from strato.domain.models import CodeRef, FunctionVersion
from strato.errors import CodeStoreError
from strato.http.request import Request

Response = tuple[int, list[tuple[str, str]], bytes]


class CodeDownload:
    def __init__(self, signer: CodeUrlSigner, codestore: CodeStore) -> None:
        self._signer = signer
        self._codestore = codestore

    def url(self, record: FunctionVersion, base_url: str) -> str:
        """``Code.Location`` of ``record`` for a client that reached strato at ``base_url``."""
        return self._signer.url(record.code.sha256_hex, base_url)

    def package_url(self, ref: CodeRef, base_url: str) -> str:
        """The URL of any stored package (a layer version's ``Content.Location``)."""
        return self._signer.url(ref.sha256_hex, base_url)

    def handle(self, request: Request) -> Response:
        """Serve one request for a package (runs on the loop's thread; reads the file)."""
        sha = request.path.rsplit("/", 1)[-1].removesuffix(".zip")
        query = parse_qs(request.query_string)
        expires = (query.get("expires") or ["0"])[0]
        given = (query.get("signature") or [""])[0]
        if not self._signer.valid(sha, expires, given):
            return 403, [("Content-Type", "text/plain")], b"Request has expired or is not signed"
        try:
            path = self._codestore.zip_path(CodeRef(sha, 0))
            return 200, [("Content-Type", "application/zip")], path.read_bytes()
        except (CodeStoreError, OSError):
            return 404, [("Content-Type", "text/plain")], b"No such package"
