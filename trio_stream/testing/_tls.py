"""Throwaway TLS certificates for tests (HTTP/2 needs TLS), issued by ``trustme``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TLSCertificate", "issue_tls_certificate"]


@dataclass(frozen=True)
class TLSCertificate:
    """A server certificate for ``127.0.0.1``/``localhost`` and the CA that signed it.

    Pass ``certfile``/``keyfile`` to :func:`trio_stream.serve`; give clients
    :meth:`client_context` (``httpx.AsyncClient(verify=...)``) or ``ca_file``
    (``curl --cacert``).
    """

    certfile: str
    keyfile: str
    ca_file: str

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts only the test CA."""
        return ssl.create_default_context(cafile=self.ca_file)


def issue_tls_certificate(directory: Path) -> TLSCertificate:
    """Create a CA and a server certificate in ``directory`` (needs the ``trustme`` package)."""
    import trustme  # a test dependency only: imported when used

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, ca_file = (
        directory / "server.pem",
        directory / "server.key",
        directory / "ca.pem",
    )
    certfile.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_file))
    return TLSCertificate(str(certfile), str(keyfile), str(ca_file))
