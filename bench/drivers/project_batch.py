#!/usr/bin/env python3
"""project_batch: this project's provider on the core's batch interface, drained from asyncio.

Consumes ``tinyagent.alchemy_provider.stream_alchemy_openai_completions`` directly (no Agent), so
the figure is the cost of the Rust transport plus the asyncio bridge and its live partial. Driver
contract: ``../shared/bench/drivers/_common.py``; run it through ``bench/run_provider_bench.py``.
"""

import os
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
_SHARED_DRIVERS = Path(
    os.environ.get("TINYAGENT_SHARED_BENCH", _REPO.parent / "shared" / "bench")
) / "drivers"
sys.path.insert(0, str(_SHARED_DRIVERS))
sys.path.insert(1, str(_REPO))  # a source checkout works without installing

_t0, _c0 = time.perf_counter(), time.process_time()
from tinyagent.agent_types import (  # noqa: E402
    AgentTool,
    Context,
    SimpleStreamOptions,
    TextContent,
    UserMessage,
)
from tinyagent.alchemy_provider import (  # noqa: E402
    OpenAICompatModel,
    stream_alchemy_openai_completions,
)

_IMPORT = (time.perf_counter() - _t0, time.process_time() - _c0)

from _common import Obs, main  # noqa: E402


class ProjectBatchDriver:
    name = "project_batch"
    exact_deltas = True
    is_async = True

    def setup(self, ctx):
        self.model = OpenAICompatModel(provider="local", id="m", base_url=ctx.chat_url,
                                       max_retries=0)
        self.options = SimpleStreamOptions()

    def _context(self, ctx):
        tools = [AgentTool(name=t["function"]["name"],
                           description=t["function"].get("description", ""),
                           parameters=t["function"].get("parameters") or {})
                 for t in (ctx.tools() or [])]
        message = UserMessage(content=[TextContent(text=ctx.prompt)])
        return Context(messages=[message], tools=tools or None)

    async def run_once(self, ctx):
        obs = Obs()
        response = await stream_alchemy_openai_completions(self.model, self._context(ctx),
                                                           self.options)
        async for event in response:
            obs.events += 1
            kind = event.type
            if kind == "text_delta":
                obs.mark()
                obs.text_parts.append(event.delta)
                obs.text_deltas += 1
            elif kind == "thinking_delta":
                obs.mark()
                obs.reasoning_parts.append(event.delta)
                obs.reasoning_deltas += 1
            elif kind == "tool_call_delta":
                obs.mark()
                if event.delta:
                    obs.tool_arg_parts.append(event.delta)
                    obs.tool_frag_deltas += 1
            elif kind == "tool_call_end":
                call = event.tool_call
                obs.tool_calls.append({"id": call.id, "name": call.name,
                                       "arguments": call.arguments})
            elif kind == "done":
                obs.finish_reason = event.reason
            elif kind == "error":
                obs.error = event.error.error_message if event.error else event.reason
        final = await response.result()
        obs.final_text = "".join(b.text or "" for b in final.content
                                 if b is not None and b.type == "text")
        return obs


if __name__ == "__main__":
    main(ProjectBatchDriver, *_IMPORT)
