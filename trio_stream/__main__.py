"""``python -m trio_stream``: the ``trio-stream`` command line."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
