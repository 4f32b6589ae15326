"""pytest fixtures for trio_stream users.

Enable with ``pytest_plugins = ["trio_stream.testing.pytest_plugin"]``.

* ``tls_certificate``: a :class:`TLSCertificate` (server cert + CA) in a
  temporary directory, for TLS / HTTP/2 tests (needs ``trustme``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._tls import TLSCertificate, issue_tls_certificate

__all__ = ["tls_certificate"]


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    """A server certificate for 127.0.0.1/localhost and its CA, issued once per session."""
    directory: Path = tmp_path_factory.mktemp("tls")
    return issue_tls_certificate(directory)
