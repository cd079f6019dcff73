# %% [markdown]
# # 06 · Prompt caching and usage
#
# Every model call sends the whole conversation again. Providers that support **prompt caching**
# charge much less (and answer faster) for a prefix they have seen recently. In this tutorial you
# will learn:
#
# - how `enable_prompt_caching=True` marks the conversation with Anthropic-style cache
#   breakpoints, and what reaches the wire,
# - why your own `agent.state.messages` never carry those markers,
# - how to read **usage**: input, output, cache read and cache write tokens, and cost, per call
#   and in total.
#
# The first cell starts the **offline demo model** (no network, no key). From the second call
# of a conversation on, it reports the earlier conversation as cached prompt tokens, the way a
# caching provider does.

# %%
from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %% [markdown]
# ## Turn caching on
#
# `enable_prompt_caching` is an `AgentOptions` field (and a public attribute you can flip later).
# The markers are only sent to providers that honour them — OpenRouter does — so this tutorial
# labels the demo model as `openrouter` and gives it a placeholder key (the demo server ignores it).

# %%
from tinyagent import Agent, AgentOptions
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions

agent = Agent(
    AgentOptions(
        stream_fn=stream_alchemy_openai_completions,
        session_id="caching-tutorial",
        enable_prompt_caching=True,
        get_api_key=lambda provider: "placeholder-key-for-the-demo-server",
    )
)
agent.set_system_prompt("You are a concise assistant.")
agent.set_model(OpenAICompatModel(provider="openrouter", id="tinyagent-demo", base_url=server.url))

for question in ["What is prompt caching?", "Why does it save money?", "When does it expire?"]:
    await agent.prompt(question)
print(len(agent.state.messages), "messages in the conversation")

# %% [markdown]
# ## What reached the wire
#
# The server keeps a log of the requests it received. In the last request, the system prompt and
# the user messages carry `cache_control` markers, at most four per request (the system prompt's
# first, then the three most recent user messages), which is the limit Anthropic enforces.
# The session id travels as OpenRouter's `session_id`, which keeps a conversation on one cache.

# %%
body = server.requests[-1].body
for message in body["messages"]:
    content = message["content"]
    marked = isinstance(content, list) and any("cache_control" in part for part in content)
    text = content if isinstance(content, str) else content[-1]["text"]
    print(f"{message['role']:<10} {'[cache marker]' if marked else '              '} {text.splitlines()[0][:40]!r}")
print("session_id:", body.get("session_id"))

# %% [markdown]
# The markers are added to **copies** of the messages for the request only:

# %%
first_user = agent.state.messages[0]
print("marker in the agent's own history:", first_user.content[-1].cache_control)

# %% [markdown]
# ## Reading usage
#
# Each assistant message carries `usage`: `input` tokens (the whole prompt, cached part
# included), `output` tokens, `cache_read` (the part of the prompt served from the cache),
# `cache_write` (tokens written to it), `total_tokens`, and a `cost` breakdown when the provider
# reports prices. Watch `cache_read` grow from the second
# call on: the conversation so far is served from the cache.

# %%
totals = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}
print(f"{'call':<6}{'input':>7}{'output':>8}{'cache read':>12}{'cache write':>13}")
calls = [m for m in agent.state.messages if m.role == "assistant"]
for number, message in enumerate(calls, 1):
    usage = message.usage
    print(f"{number:<6}{usage['input']:>7}{usage['output']:>8}{usage['cache_read']:>12}{usage['cache_write']:>13}")
    for key in totals:
        totals[key] += usage[key]
print(f"{'total':<6}{totals['input']:>7}{totals['output']:>8}{totals['cache_read']:>12}{totals['cache_write']:>13}")
print("cost reported:", calls[-1].usage["cost"]["total"])

# %% [markdown]
# The share of prompt tokens served from the cache is the number to watch on a long
# conversation:

# %%
print(f"{totals['cache_read'] / totals['input']:.0%} of the prompt tokens came from the cache")

# %% [markdown]
# In a notebook, `%agent usage` prints the same table for a `%%agent` conversation, and every
# rendered answer has a footer with its call's numbers (tutorial 04).

# %%
server.stop()
print("Demo model stopped.")

# %% [markdown]
# **Next:** [07 · Steering, follow-ups and tool-loop controls](07_steering_and_tool_loop.ipynb).
