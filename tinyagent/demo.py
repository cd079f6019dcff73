"""``python -m tinyagent.demo``: the product README's quickstart, offline.

``python -m tinyagent.demo --notebook notebooks/01_quickstart.ipynb`` executes a tutorial
notebook instead (in a fresh kernel, final render mode) and prints each code cell with its output.

Without ``--notebook`` it starts the built-in demo model (a loopback OpenAI-compatible server with a deterministic brain,
``tinyagent.testing``), points an ``Agent`` at it through the real stack (the Rust streaming core,
HTTP and SSE) and streams two answers to the terminal: a free-form prompt, then a prompt that
makes the model call the README's ``sum`` tool. No network and no API key are needed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from tinyagent import (
    Agent,
    AgentOptions,
    AgentTool,
    AgentToolResult,
    AssistantMessage,
    TextContent,
)
from tinyagent._run_errors import REPORTED_BY_CALLER
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import DemoBrain, ModelServer


async def calculate_sum(
    tool_call_id: str, args: dict[str, Any], signal: Any, on_update: Any
) -> AgentToolResult:
    result = args["a"] + args["b"]
    return AgentToolResult(content=[TextContent(text=str(result))])


SUM_TOOL = AgentTool(
    name="sum",
    description="Add two numbers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
    execute=calculate_sum,
)


class _LivePrinter:
    """Print text deltas as they stream and one line per tool call, each on its own line."""

    def __init__(self) -> None:
        self.mid_line = False  # text of the current message was written without its newline

    def __call__(self, event: Any) -> None:
        if event.type == "message_update":
            inner = event.assistant_message_event
            if inner is not None and inner.type == "text_delta" and inner.delta:
                sys.stdout.write(inner.delta)
                sys.stdout.flush()
                self.mid_line = not inner.delta.endswith("\n")
        elif event.type == "tool_execution_start":
            print(f"[tool call] {event.tool_name}({event.args})")
        elif event.type == "tool_execution_end":
            text = "".join(getattr(block, "text", "") or "" for block in event.result.content)
            print(f"[tool result] {event.tool_name} -> {text}")
        elif event.type == "message_end" and self.mid_line:
            print()
            self.mid_line = False


async def run(prompts: list[str]) -> None:
    with ModelServer(DemoBrain()) as server:
        print(f"Demo model (offline, deterministic) listening on {server.url}\n")
        agent = Agent(
            AgentOptions(stream_fn=stream_alchemy_openai_completions, session_id="demo-session")
        )
        agent.set_system_prompt("You are a helpful assistant.")
        agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))
        agent.set_tools([SUM_TOOL])
        agent.subscribe(_LivePrinter())
        REPORTED_BY_CALLER.set(True)  # printed below, not logged a second time
        for prompt in prompts:
            print(f">>> {prompt}")
            reply = await agent.prompt(prompt)
            if isinstance(reply, AssistantMessage) and reply.stop_reason in ("error", "aborted"):
                print(f"[{reply.stop_reason}] {reply.error_message}")
            print()
        replies = [m for m in agent.state.messages if isinstance(m, AssistantMessage)]
        total = sum((m.usage or {}).get("total_tokens", 0) for m in replies)
        print(f"{len(agent.state.messages)} messages in the conversation, {total} tokens in all.")


def run_notebook(path: str) -> None:
    """Execute a tutorial like CI does and print it as a terminal transcript."""
    import nbformat
    from nbclient import NotebookClient

    # Final render mode: one plain output per run, as in the committed tutorials
    # (docs/notebook.md#render-modes).
    os.environ["TINYAGENT_RENDER"] = "final"
    notebook = nbformat.read(path, as_version=4)
    workdir = os.path.dirname(os.path.abspath(path))
    print(f"Running {path} on the offline demo model (no key, no network)...\n")
    NotebookClient(
        notebook,
        timeout=120,
        resources={"metadata": {"path": workdir}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel transport chatter
    ).execute()
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            title = next((ln for ln in cell.source.splitlines() if ln.startswith("#")), None)
            if title:
                print(f"\n{title}\n")
            continue
        if cell.cell_type != "code":
            continue
        print("\n".join(f"In  | {line}" for line in cell.source.splitlines()))
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"
            for line in str(text).rstrip("\n").splitlines():
                print(f"Out | {line}")
        print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tinyagent.demo",
        description=(
            "The README's quickstart on the offline demo model: a loopback OpenAI-compatible "
            "server with a deterministic brain, driven through the real stack (Rust core, HTTP, "
            "SSE). No network and no API key are needed."
        ),
    )
    parser.add_argument(
        "prompts",
        nargs="*",
        default=["What is the capital of France?", "Please use sum to add 2 and 40."],
        help="prompts to send, in order (one conversation)",
    )
    parser.add_argument(
        "--notebook",
        metavar="PATH",
        help="execute this tutorial notebook (e.g. notebooks/01_quickstart.ipynb) and print it",
    )
    args = parser.parse_args(argv)
    if args.notebook:
        if not os.path.isfile(args.notebook):
            parser.exit(2, f"{parser.prog}: error: no notebook at {args.notebook}\n")
        run_notebook(args.notebook)
    else:
        asyncio.run(run(args.prompts))


if __name__ == "__main__":
    main()
