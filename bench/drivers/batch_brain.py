"""The model of ``bench/batch_bench.py``: a tool call, then an answer, paced like a provider.

Loaded by the loopback server's own process (``python -m tinyagent.testing --brain
batch_brain:brain``, this folder on ``PYTHONPATH``). A request whose last message is a tool
result gets the answer; any other request gets one ``lookup`` call. Both replies are streamed
one ~4-character token per event, ``DELAY`` seconds apart (50 tokens/s per stream). The two
``Reply`` objects are module constants, so the server builds their bodies once.
"""

from __future__ import annotations

import os
from typing import Any

from tinyagent.testing import Reply, ToolCallSpec, Usage

TOKENS_PER_SECOND = float(os.environ.get("BATCH_BENCH_TPS", "50"))
DELAY = 1.0 / TOKENS_PER_SECOND
ANSWER_TOKENS = int(os.environ.get("BATCH_BENCH_ANSWER_TOKENS", "40"))

TOOL_TURN = Reply(
    tool_calls=[ToolCallSpec("lookup", {"city": "Oslo", "unit": "celsius"}, id="call_1",
                             fragment_chars=4)],
    usage=Usage(prompt_tokens=60, completion_tokens=12),
    chunk_chars=4,
    delay=DELAY,
)
ANSWER_TURN = Reply(
    text=("It is 21 C in Oslo. " * ANSWER_TOKENS)[: 4 * ANSWER_TOKENS],
    usage=Usage(prompt_tokens=90, completion_tokens=ANSWER_TOKENS),
    chunk_chars=4,
    delay=DELAY,
)


def brain(request: dict[str, Any]) -> Reply:
    messages = request.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return ANSWER_TURN
    return TOOL_TURN
