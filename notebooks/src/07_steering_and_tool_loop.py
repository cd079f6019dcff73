# %% [markdown]
# # 07 · Steering, follow-ups and tool-loop controls
#
# An agent run is a loop: call the model, run the tools it asks for, call the model again with
# the results, until it answers without tools. This tutorial shows every way to influence that
# loop from outside:
#
# - **steering**: a message injected into a run that is already going,
# - **follow-ups**: messages that start another turn when the run would otherwise stop,
# - **`before_tool_call` / `after_tool_call`**: approve, deny or rewrite individual tool calls,
# - **terminal results** and **`should_stop_after_turn`**: end a run early on purpose,
# - **`max_turns`**: a hard cap on model calls per run.
#
# The first cell starts the **offline demo model** (no network, no key). It calls the tools a
# message names and quotes the latest user message otherwise, which makes the loop easy to read.

# %%
from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %%
import asyncio

from tinyagent import (
    Agent,
    AgentOptions,
    AgentTool,
    AgentToolResult,
    TextContent,
    ToolLoopControl,
    UserMessage,
    extract_text,
)
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions


def user(text):
    return UserMessage(content=[TextContent(text=text)])


def new_agent(tools=(), **options):
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions, **options))
    agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))
    agent.set_tools(list(tools))
    return agent


def show(agent):
    """One line per message of the conversation."""
    for message in agent.state.messages:
        if message.role == "assistant" and message.stop_reason == "tool_calls":
            names = [block.name for block in message.content if block.type == "tool_call"]
            line = "calls " + ", ".join(names)
        elif message.role == "assistant" and message.stop_reason == "error":
            line = f"[error] {message.error_message}"
        elif message.role == "assistant":
            line = extract_text(message).splitlines()[2]  # the demo model quotes the message here
        else:
            line = extract_text(message)
        print(f"{message.role:<12} {line}")


async def note(tool_call_id, args, signal, on_update):
    await asyncio.sleep(0.1)
    return AgentToolResult(content=[TextContent(text=f"noted {args['text']}")])


note_tool = AgentTool(
    name="note",
    description="Write a note",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    execute=note,
)

# %% [markdown]
# ## Steering
#
# `agent.steer(message)` may be called at any time, from any thread. The loop picks steering up
# at three points: when the run starts, after each tool batch, and after each turn without tools.
# A steering message becomes the next user message, **before** the model is called again — the
# model changes course without waiting for the run to end. Tools that already started are never
# cancelled by it.
#
# Here the message is sent while the `note` tool is running (after 50 ms of its 100 ms):

# %%
agent = new_agent([note_tool])


async def steer_soon():
    await asyncio.sleep(0.05)
    agent.steer(user("Also mention the weather."))


steering = asyncio.ensure_future(steer_soon())
await agent.prompt('Use note with "buy milk".')
await steering
show(agent)

# %% [markdown]
# The steering message arrived after the tool result, and the next model call answered it.
#
# ## Follow-ups
#
# `agent.follow_up(message)` queues work for **after** the run would stop: each follow-up starts
# another turn. With the default `"one-at-a-time"` mode each one gets its own turn; with
# `follow_up_mode="all"` they are delivered together.

# %%
agent = new_agent()
agent.follow_up(user("Second question."))
agent.follow_up(user("Third question."))
await agent.prompt("First question.")
show(agent)

# %% [markdown]
# ## Approving, denying and rewriting tool calls
#
# `before_tool_call(tool_call, tool, args)` runs after the arguments were validated and before
# the tool. Return `None` to let it run, or a `ToolLoopControl` with a `result` to answer in its
# place (here: a denial the model can read). `after_tool_call(tool_call, result_message)` sees
# each result once the batch has settled and may replace it.

# %%
async def delete_file(tool_call_id, args, signal, on_update):
    raise RuntimeError("this must never run")


delete_tool = AgentTool(
    name="delete_file",
    description="Delete a file",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    execute=delete_file,
)


def guard(tool_call, tool, args):
    if tool_call.name == "delete_file":
        return ToolLoopControl(result=AgentToolResult(content=[TextContent(text="Denied: deleting files is not allowed.")]))
    return None


def redact(tool_call, result_message):
    text = extract_text(result_message)
    if "milk" in text:
        return ToolLoopControl(result=AgentToolResult(content=[TextContent(text=text.replace("milk", "[redacted]"))]))
    return None


agent = new_agent([note_tool, delete_tool], before_tool_call=guard, after_tool_call=redact)
print(await agent.prompt_text('Use delete_file on "notes.txt", then note "buy milk".'))

# %% [markdown]
# ## Ending a run early
#
# A tool result with `terminate=True` ends the run right after its batch: no further model call.
# That is how a "final answer" tool works. `should_stop_after_turn(message, tool_results,
# context, new_messages)` is the general hook: it is asked after every turn.

# %%
async def final_answer(tool_call_id, args, signal, on_update):
    return AgentToolResult(content=[TextContent(text=args["answer"])], terminate=True)


final_tool = AgentTool(
    name="final_answer",
    description="Give the final answer and stop",
    parameters={"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
    execute=final_answer,
)
agent = new_agent([final_tool])
await agent.prompt('Call final_answer with "42".')
show(agent)
print("model calls:", sum(m.role == "assistant" for m in agent.state.messages))

# %%
agent = new_agent(should_stop_after_turn=lambda message, results, context, new: True)
agent.follow_up(user("This follow-up is never reached."))
await agent.prompt("Stop after this turn.")
show(agent)
print("state.error:", agent.state.error)

# %% [markdown]
# A run stopped on purpose is not an error (`agent.state.error` stays `None`), and messages it
# did not consume stay queued for the next run. `agent.clear_follow_up_queue()` drops them.
#
# ## A hard cap: `max_turns`
#
# `max_turns` (default 100) limits the model calls of one run. When the loop would make one more
# call it sends nothing and ends the run with an error message that says so — a runaway tool loop
# cannot burn through your budget.

# %%
agent = new_agent([note_tool], max_turns=1)
await agent.prompt('Use note with "loop".')
show(agent)
print("state.error:", agent.state.error)

# %%
server.stop()
print("Demo model stopped.")

# %% [markdown]
# **Next:** [08 · The Rust streamer's low-level API](08_rust_streamer.ipynb).
