"""Values that more than one module of the package must agree on (docs/architecture.md#constants).

Kept in a leaf module (it imports nothing) so the provider, the proxy, the loop and the test double
can all import it without an import cycle. The Rust core has its own copy of each (it cannot
import Python), named in the comments below.
"""

from __future__ import annotations

#: Best-effort ``arguments`` of a streaming tool call are parsed only while its ``partial_json`` is
#: at most this many characters (docs/architecture.md#partial); above it they are ``{}`` until the
#: call ends, so a long argument text costs O(n) overall instead of O(n^2). Rust:
#: ``state::PARTIAL_ARGUMENTS_LIMIT`` (the ``next_event()`` partial).
BEST_EFFORT_ARGUMENTS_LIMIT = 64 * 1024

#: The ``error_message`` of a stream ended by an abort (docs/wire.md#error-messages). Rust:
#: ``transport::ABORTED_MESSAGE``.
ABORTED_TEXT = "Request was aborted"
