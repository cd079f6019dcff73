# %% [markdown]
# # 03 · Events and their order
#
# Everything an agent does is reported as an **event**, in a fixed order. A user interface (like
# the notebook renderer of tutorial 04) is nothing more than a listener that turns events into
# pixels. In this tutorial you will:
#
# - `subscribe` a listener and see the exact sequence of a plain reply,
# - see the sequence of a reply with **two tool calls**,
# - use `agent.stream(...)` to consume the same events with `async for`,
# - see where streamed text arrives (`message_update` wrapping a `text_delta`).
#
# The first cell starts the **offline demo model** (no network, no key): its replies are
# deterministic, so the event lists below are exactly what you get.

# %%
from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %%
from tinyagent import Agent, AgentOptions, AgentTool, AgentToolResult, TextContent
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions

agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))

# %% [markdown]
# ## A listener
#
# A listener is a plain function called synchronously with each event, in subscription order.
# `subscribe` returns a function that unsubscribes. For `message_update` the interesting part is
# the inner `assistant_message_event`: its `type` says what changed (`text_delta`,
# `thinking_delta`, `tool_call_delta`, …) and `delta` holds the new text. To keep the printout
# short, runs of identical updates are folded into one line with a count.

# %%
events = []


def describe(event):
    if event.type == "message_update":
        return f"message_update[{event.assistant_message_event.type}]"
    if event.type in ("message_start", "message_end"):
        return f"{event.type}({event.message.role})"
    if event.type.startswith("tool_execution"):
        return f"{event.type}({event.tool_name})"
    return event.type


def fold(lines):
    out = []
    for line in lines:
        if out and out[-1][0] == line:
            out[-1][1] += 1
        else:
            out.append([line, 1])
    return "\n".join(f"{line} ×{n}" if n > 1 else line for line, n in out)


unsubscribe = agent.subscribe(lambda event: events.append(describe(event)))
await agent.prompt("Tell me about events.")
print(fold(events))

# %% [markdown]
# Read it top to bottom: one run (`agent_start` … `agent_end`), one turn, your prompt as a
# message, then the assistant message: a reasoning block (`thinking_*`), the text streamed word
# by word (`text_delta`), and the end. **`message_end` always comes**, even after an error or an
# abort, so a UI can rely on it to close what `message_start` opened.
#
# ## Two tool calls
#
# With tools, a turn ends with the tool batch, and the model is called again with the results in
# a second turn. All `tool_execution_start` events come first, in call order; the ends come after
# the whole batch has settled, each followed by its tool-result message.

# %%
async def lookup(tool_call_id, args, signal, on_update):
    return AgentToolResult(content=[TextContent(text=f"facts about {args['topic']}")])


def make_tool(name):
    return AgentTool(
        name=name,
        description=f"{name} a topic",
        parameters={"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]},
        execute=lookup,
    )


agent.set_tools([make_tool("search"), make_tool("summarize")])
agent.reset()
events.clear()
await agent.prompt('Use search for "otters", then summarize "otters".')
print(fold(events))

# %% [markdown]
# ## The same events with `async for`
#
# `agent.stream(prompt)` is the same run as `prompt()`, yielding exactly the events listeners get.
# Breaking out of the loop early aborts the run cleanly. Here we collect the streamed text
# deltas, which is how you would forward an answer to a web socket.

# %%
unsubscribe()
agent.set_tools([])
agent.reset()
pieces = []
async for event in agent.stream("Stream me a reply."):
    inner = getattr(event, "assistant_message_event", None)
    if inner is not None and inner.type == "text_delta":
        pieces.append(inner.delta)
print(len(pieces), "text deltas; the first five:", pieces[:5])
print("".join(pieces).splitlines()[2])

# %% [markdown]
# `agent.stream_text(prompt)` is the shortcut that yields only the text pieces.

# %%
server.stop()
print("Demo model stopped.")

# %% [markdown]
# **Next:** [04 · The `%%agent` magic](04_agent_magic.ipynb) — all of this, rendered in the notebook.
