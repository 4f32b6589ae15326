"""Public test helpers for code built on trio_stream.

* :class:`StreamingASGITransport` / :func:`open_asgi_client`: httpx talking to
  an ASGI app in memory, streaming (works with ``autojump_clock``);
* :func:`open_test_server`: the app on real Hypercorn at 127.0.0.1:0, with
  accounting of in-flight requests and open connections;
* :class:`FaultProxy`: a TCP proxy that cuts, stalls, delays or refuses;
* :func:`open_sse_reader`: decode an httpx streaming response's events, n at a time;
* :func:`issue_tls_certificate`: TLS files for HTTP/2 tests (``trustme``);
  ``trio_stream.testing.pytest_plugin`` wraps it as a fixture.
"""

from ._fake_openai import FakeOpenAI as FakeOpenAI
from ._fake_openai import FakeRequest as FakeRequest
from ._proxy import FaultProxy as FaultProxy
from ._reader import SSEReader as SSEReader
from ._reader import open_sse_reader as open_sse_reader
from ._server import RunningServer as RunningServer
from ._server import open_test_server as open_test_server
from ._tls import TLSCertificate as TLSCertificate
from ._tls import issue_tls_certificate as issue_tls_certificate
from ._transport import StreamingASGITransport as StreamingASGITransport
from ._transport import open_asgi_client as open_asgi_client
