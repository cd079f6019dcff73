# %% [markdown]
# # 01 · Quickstart: an Agent and `prompt_text`
#
# This tutorial runs the example from the README — an `Agent`, a system prompt, a model and one
# question — end to end. You will learn the three things every tinyagent program does:
#
# 1. create an `Agent` with a **stream function** (the built-in Rust streaming core),
# 2. give it a **model** (an `OpenAICompatModel`: any OpenAI-compatible `/chat/completions` URL),
# 3. **prompt** it and read the answer.
#
# ## The model used here: the offline demo model
#
# The first cell starts the **offline demo model**: a small OpenAI-compatible server on
# `127.0.0.1` that answers deterministically, needs no network and no API key. Everything else
# is the real stack — the Rust core opens an HTTP connection, parses the server-sent events and
# streams them into the agent — so what you see is exactly what a real provider would give you,
# only with a predictable answer. (Tutorial 10 switches to a real provider.)

# %%
from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
# (cassette_brain returns DemoBrain() unless TINYAGENT_CASSETTE asks to replay a recording.)
server = ModelServer(cassette_brain(DemoBrain())).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %% [markdown]
# ## Create and configure the agent
#
# This is the README example. The only change is the model: instead of OpenRouter's URL we
# point `base_url` at the demo server (`server.url` is its full `/v1/chat/completions` URL).
# `provider="demo"` is just a label here; for a real provider it also picks the API-key variable.

# %%
from tinyagent import Agent, AgentOptions
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions

agent = Agent(
    AgentOptions(
        stream_fn=stream_alchemy_openai_completions,
        session_id="my-session",
    )
)
agent.set_system_prompt("You are a helpful assistant.")
agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))

# %% [markdown]
# ## Ask a question
#
# `prompt_text` runs the whole agent loop and returns the answer's text. Jupyter runs cells on an
# event loop, so you can `await` directly in a cell (in a script, wrap it in `asyncio.run(...)`
# as the README does).

# %%
response = await agent.prompt_text("What is the capital of France?")
print(response)

# %% [markdown]
# The demo model quotes your question back and says where the answer came from. With a real model
# the same code prints "Paris".
#
# ## What the agent remembers
#
# The agent keeps the conversation in `agent.state.messages`: your prompt and the assistant's
# reply. Messages are Pydantic models, so use attribute access. The assistant message also
# carries the stop reason and the token usage the server reported.

# %%
for message in agent.state.messages:
    print(f"{message.role:<10} {message.content[-1].text.splitlines()[0]!r}")

reply = agent.state.messages[-1]
print("stop reason:", reply.stop_reason)
print("tokens in/out:", reply.usage["input"], "/", reply.usage["output"])

# %% [markdown]
# ## `prompt` returns the whole message
#
# `prompt()` is the same run but returns the final `AssistantMessage`, including any reasoning
# ("thinking") the model streamed. The demo model always thinks one line first.

# %%
message = await agent.prompt("Say hello in one word.")
for block in message.content:
    print(block.type, "→", (getattr(block, "thinking", None) or block.text).splitlines()[0])
print(len(agent.state.messages), "messages in the conversation now")

# %% [markdown]
# ## Clean up
#
# Stop the demo server when you are done (it also stops when the kernel exits).

# %%
server.stop()
print("Demo model stopped.")

# %% [markdown]
# **Next:** [02 · Tools](02_tools.ipynb) — let the model call your Python functions.
