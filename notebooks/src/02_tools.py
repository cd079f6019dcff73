# %% [markdown]
# # 02 · Tools: parallel calls, live updates, validation errors
#
# A **tool** is an async Python function the model may call, described by a name, a
# description and a JSON Schema for its arguments. In this tutorial you will:
#
# - define tools as `AgentTool` objects (the README's `sum` tool first),
# - see that **all tool calls of one model message run concurrently**,
# - stream **progress from a running tool** with `on_update`,
# - see what happens when the model sends **arguments that do not match the schema**.
#
# The first cell starts the **offline demo model** (no network, no key). It calls every tool
# your prompt names, filling numbers from the numbers in the prompt and strings from quoted text,
# and then reports what the tools returned — deterministic, so the outputs below never change.

# %%
from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %%
from tinyagent import Agent, AgentOptions, AgentTool, AgentToolResult, TextContent
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions


def new_agent(tools):
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))
    agent.set_tools(tools)
    return agent


# %% [markdown]
# ## The README's `sum` tool
#
# `execute` receives the call id, the validated arguments, an abort `signal` and an `on_update`
# callback, and returns an `AgentToolResult`. The model sees the result's text and writes its
# answer from it.

# %%
async def calculate_sum(tool_call_id: str, args: dict, signal, on_update) -> AgentToolResult:
    result = args["a"] + args["b"]
    return AgentToolResult(content=[TextContent(text=str(result))])


sum_tool = AgentTool(
    name="sum",
    description="Add two numbers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
    execute=calculate_sum,
)

agent = new_agent([sum_tool])
print(await agent.prompt_text("Please use sum to add 2 and 40."))

# %% [markdown]
# One prompt, two model calls: the first asked for the tool, the second answered after seeing the
# result. The conversation shows every step:

# %%
for message in agent.state.messages:
    if message.role == "assistant" and message.stop_reason == "tool_calls":
        calls = [f"{b.name}({b.arguments})" for b in message.content if b.type == "tool_call"]
        print(f"{'assistant':<12} calls {', '.join(calls)}")
    else:
        print(f"{message.role:<12} {message.content[-1].text!r}")

# %% [markdown]
# ## Parallel tools
#
# When one model message asks for several tools, tinyagent starts them **all at once** and waits
# for the batch. The two tools below wait 0.3 s and 0.4 s; the log shows both start before
# either finishes, so the batch takes 0.4 s, not 0.7 s. The agent reports `tool_execution_end`
# only once the whole batch has settled, in call order, so the history stays in a predictable
# order however long each tool takes.

# %%
import asyncio

log = []


def city_tool(name, answer, seconds):
    async def execute(tool_call_id, args, signal, on_update):
        log.append(f"{name} started for {args['city']}")
        await asyncio.sleep(seconds)
        log.append(f"{name} finished")
        return AgentToolResult(content=[TextContent(text=answer.format(**args))])

    return AgentTool(
        name=name,
        description=f"Look up the {name.split('_')[1]} in a city",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        execute=execute,
    )


weather = city_tool("get_weather", "Sunny in {city}", 0.3)
local_time = city_tool("get_time", "It is noon in {city}", 0.4)
agent = new_agent([weather, local_time])
agent.subscribe(lambda e: e.type.startswith("tool_execution") and log.append(f"event {e.type} {e.tool_name}"))

answer = await agent.prompt_text('Call get_weather for "Oslo" and get_time for "Lima".')
print("\n".join(log))
print()
print(answer)

# %% [markdown]
# ## Progress from a running tool: `on_update`
#
# A long tool can report partial results while it works. Each `on_update(...)` call immediately
# becomes a `tool_execution_update` event (in a notebook, the tool card shows it live). Here a
# listener prints them.

# %%
async def count_down(tool_call_id, args, signal, on_update):
    for left in range(int(args["n"]), 0, -1):
        on_update(AgentToolResult(content=[TextContent(text=f"{left} to go")]))
        await asyncio.sleep(0.05)
    return AgentToolResult(content=[TextContent(text="lift-off")])


countdown = AgentTool(
    name="countdown",
    description="Count down from n",
    parameters={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    execute=count_down,
)


def show_progress(event):
    if event.type == "tool_execution_update":
        print("update:", event.partial_result.content[0].text)
    elif event.type == "tool_execution_end":
        print("result:", event.result.content[0].text)


agent = new_agent([countdown])
agent.subscribe(show_progress)
print(await agent.prompt_text("Run the countdown from 3."))

# %% [markdown]
# ## Arguments that do not match the schema
#
# Models make mistakes. Before a tool runs, tinyagent validates the arguments against its JSON
# Schema. A violation is **not** an exception in your code: the call gets an error result that
# says exactly what is wrong and asks the model to fix it, and the loop continues so a real model
# can retry. Here the schema allows 1 to 5 repetitions and the prompt asks for 9.

# %%
async def repeat_word(tool_call_id, args, signal, on_update):
    return AgentToolResult(content=[TextContent(text=" ".join([args["word"]] * args["times"]))])


repeat = AgentTool(
    name="repeat",
    description="Repeat a word",
    parameters={
        "type": "object",
        "properties": {
            "word": {"type": "string"},
            "times": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["word", "times"],
    },
    execute=repeat_word,
)
agent = new_agent([repeat])
await agent.prompt('Use repeat with the word "hi", 9 times.')
result = next(m for m in agent.state.messages if m.role == "tool_result")
print("is_error:", result.is_error)
print(result.content[0].text)

# %% [markdown]
# The tool function never ran. The same happens for arguments that are not valid JSON, for an
# unknown tool name, or when the tool raises: each becomes an error result the model can read.

# %%
server.stop()
print("Demo model stopped.")

# %% [markdown]
# **Next:** [03 · Events](03_events.ipynb) — everything the agent reports while it works, in order.
