"""Helpers shared by the tests (never shipped in the wheel): scripted agents, the conformance
corpus loader, notebook fakes, a fresh notebook shell, a recording widget comm, the core's input
dicts, ``run_sync`` and an independent SSE reader. Test modules import them as
``from support.<module> import ...``."""
