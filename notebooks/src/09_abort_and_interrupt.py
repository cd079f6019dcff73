# %% [markdown]
# # 09 · Abort and interrupt
#
# Stopping a run must really stop it: the HTTP stream is closed, running tools are cancelled, no
# further request goes to the model, and the conversation stays usable. In this tutorial you will
# see all the ways to stop a run and what each leaves behind:
#
# - `agent.abort()` while the answer **streams**,
# - `agent.abort()` while **tools** run,
# - **cancelling** the task that awaits `prompt()` (e.g. a timeout),
# - and, in a notebook, the kernel's **interrupt** button and the **Stop** buttons.
#
# The first cell starts the **offline demo model** (no network, no key), plus a local server
# with a slow scripted reply, so there is time to stop it mid-stream.

# %%
from tinyagent.testing import DemoBrain, ModelServer, Reply, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
# A second local server whose reply streams slowly: 200 words, one every 20 ms.
slow_server = ModelServer(Reply(text=" ".join(f"w{i}" for i in range(200)), chunking="words", delay=0.02)).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %%
import asyncio

from tinyagent import Agent, AgentOptions, AgentTool, AgentToolResult, TextContent, extract_text
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions


def new_agent(url, tools=()):
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=url))
    agent.set_tools(list(tools))
    return agent


# %% [markdown]
# ## Abort while the answer streams
#
# `abort()` can be called from anywhere — a listener, another task, another thread, a button. Here
# a listener calls it once five words have arrived. The run ends at once with an assistant message
# that keeps the text received so far, with `stop_reason="aborted"`. The server's log shows that
# the client closed the connection: the provider stops generating (and billing).

# %%
agent = new_agent(slow_server.url)
words = []


def stop_after_five_words(event):
    inner = getattr(event, "assistant_message_event", None)
    if inner is not None and inner.type == "text_delta":
        words.append(inner.delta)
        if len(words) == 5:
            agent.abort()


agent.subscribe(stop_after_five_words)
message = await agent.prompt("Write a very long answer.")
print("stop reason:", message.stop_reason)
print("error message:", message.error_message)
print("partial text kept:", extract_text(message).startswith("w0 w1 w2 w3 w4"))
print("cut short:", "w199" not in extract_text(message))
print("connection closed by the client:", slow_server.wait_for_disconnect(timeout=3.0))
print("state.error:", agent.state.error)

# %% [markdown]
# The aborted message is part of the history, and the agent is ready for the next prompt:

# %%
agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))
print(extract_text(await agent.prompt("Are you still there?")).splitlines()[2])
print([m.role + (f"({m.stop_reason})" if m.role == "assistant" else "") for m in agent.state.messages])

# %% [markdown]
# ## Abort while tools run
#
# Tools receive the abort as their `signal` (an `asyncio.Event`), and their tasks are cancelled
# too, so even a tool that ignores the signal stops. Finished calls keep their results; unfinished
# ones get the error result `"Tool execution aborted"`. The run then ends with an aborted assistant
# message made locally: **no further request** is sent to the model.

# %%
async def quick(tool_call_id, args, signal, on_update):
    return AgentToolResult(content=[TextContent(text="quick result")])


async def slow(tool_call_id, args, signal, on_update):
    await asyncio.sleep(30)  # far longer than we wait
    return AgentToolResult(content=[TextContent(text="never")])


tools = [
    AgentTool(name="quick_lookup", description="Fast", parameters={"type": "object", "properties": {}}, execute=quick),
    AgentTool(name="slow_lookup", description="Slow", parameters={"type": "object", "properties": {}}, execute=slow),
]
agent = new_agent(server.url, tools)
server.clear_requests()


def abort_when_tools_start(event):
    if event.type == "tool_execution_start" and event.tool_name == "slow_lookup":
        asyncio.get_running_loop().call_later(0.2, agent.abort)


agent.subscribe(abort_when_tools_start)
message = await agent.prompt("Use quick_lookup and slow_lookup.")
for m in agent.state.messages:
    if m.role == "tool_result":
        print(f"{m.tool_name:<13} is_error={m.is_error!s:<5} {extract_text(m)}")
print("final stop reason:", message.stop_reason)
print("requests sent to the model:", len(server.requests))

# %% [markdown]
# ## Cancelling the awaiting task
#
# Cancelling the task that awaits `prompt()` — for example with `asyncio.wait_for` — aborts the
# run, waits for its cleanup, and then raises `CancelledError` (here turned into `TimeoutError`).

# %%
agent = new_agent(slow_server.url)
try:
    await asyncio.wait_for(agent.prompt("Another very long answer, please."), timeout=0.5)
except TimeoutError:
    print("timed out; the run was aborted and cleaned up")
print("still streaming:", agent.state.is_streaming)
print("last message:", agent.state.messages[-1].stop_reason)

# %% [markdown]
# ## In a notebook: interrupt and Stop
#
# - A `%%agent` cell runs on the kernel's event loop. The toolbar's **interrupt** button (■, or
#   *Kernel → Interrupt*) aborts the run exactly like `abort()`: the output says *stopped*, the
#   partial answer stays in the history, and the next `%%agent` cell works normally.
# - While a cell streams, its output has its own **Stop** button, and the chat panel has one too
#   (tutorial 05).
# - `%%agent --bg` starts the run in the background and returns a handle with `.stop()`,
#   `.wait()`, `.done` and `.result`; `%agent stop` stops it from another cell.
#
# Nothing owned by tinyagent survives a stop: no task, no HTTP connection, no tool task. (A plain
# synchronous function running in a worker thread cannot be killed by Python; its call is marked
# aborted at once and the thread is left to finish on its own, with a logged warning.)

# %%
server.stop()
slow_server.stop()
print("Servers stopped.")

# %% [markdown]
# **Next:** [10 · Real providers](10_real_providers.ipynb).
