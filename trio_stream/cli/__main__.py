"""``python -m trio_stream.cli``: the ``trio-stream`` command line."""

from __future__ import annotations

from . import main

raise SystemExit(main())
