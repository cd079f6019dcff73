# %% [markdown]
# # 08 · The Rust streamer's low-level API: `tinyagent._alchemy`
#
# Under the `Agent` sits a compiled Rust extension that owns the HTTP connection, parses the
# server-sent events and assembles the assistant message. The agent uses it through
# `stream_alchemy_openai_completions`; you can also call it directly, with plain dicts, when you
# want one model call and nothing else — a batch job, a benchmark, a custom loop. You will learn:
#
# - the three input dicts (model, context, options),
# - the **stream handle**: `next_event()`, `result()`, `cancel()`,
# - `collect_openai_completions` for one-shot calls,
# - how input errors and start-up failures are reported.
#
# The first cell starts the **offline demo model** (no network, no key), plus a second loopback
# server with a slow scripted reply for the cancellation example.

# %%
from tinyagent.testing import DemoBrain, ModelServer, Reply, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
# A second local server whose reply streams slowly (one word every 50 ms).
slow_server = ModelServer(Reply(text=" ".join(["slowly"] * 100), chunking="words", delay=0.05)).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

# %% [markdown]
# ## The inputs
#
# - **model**: `id`, `provider`, `api` and the full chat-completions `base_url`;
# - **context**: the system prompt, the messages (the `model_dump()` shape of tinyagent's message
#   types) and the tools;
# - **options**: `api_key`, `temperature`, `max_tokens`, timeouts, retries, extra headers, …
#   (`None` or missing means the default).

# %%
from tinyagent import _alchemy

model = {"id": "tinyagent-demo", "provider": "demo", "api": "openai-completions", "base_url": server.url}
context = {
    "system_prompt": "You are terse.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Rust!"}], "timestamp": 0}],
    "tools": None,
}
options = {"api_key": None, "temperature": 0.2}

# %% [markdown]
# ## Streaming events with a handle
#
# `openai_completions_stream` starts the request in the background and returns a handle at once.
# `next_event()` blocks (with the GIL released) until the next event and returns `None` after the
# terminal one. Every event carries a `partial` — the message so far — which we leave out here.

# %%
handle = _alchemy.openai_completions_stream(model, context, options)
kinds = []
while (event := handle.next_event()) is not None:
    kinds.append(event["type"])
    if event["type"] == "text_delta" and kinds.count("text_delta") <= 3:
        print("text_delta:", repr(event["delta"]))
print("event types in order:", list(dict.fromkeys(kinds)))
print("terminal event:", kinds[-1])

# %% [markdown]
# `result()` returns the final assistant message as a dict: content blocks in the order they were
# opened (here the reasoning, then the text), the stop reason, and usage with all its keys.

# %%
final = handle.result()
print([block["type"] for block in final["content"]])
print("thinking came from the wire field:", final["content"][0]["thinking_signature"])
print("stop reason:", final["stop_reason"])
print("usage:", {k: v for k, v in final["usage"].items() if k != "cost"})

# %% [markdown]
# ## One-shot: `collect_openai_completions`
#
# Runs the whole stream and returns every event (without partials) and the final message.

# %%
collected = _alchemy.collect_openai_completions(model, context, options)
print(len(collected["events"]), "events")
print(collected["final_message"]["content"][1]["text"].splitlines()[2])

# %% [markdown]
# ## Cancelling
#
# `cancel()` is idempotent, thread-safe and non-blocking. It closes the HTTP connection and ends
# the stream with an `error` event whose reason is `aborted`; the text received so far is kept.

# %%
slow_model = {**model, "base_url": slow_server.url}
handle = _alchemy.openai_completions_stream(slow_model, context, options)
while (event := handle.next_event())["type"] != "text_delta":
    pass
handle.cancel()
while (event := handle.next_event()) is not None:
    last = event
print("terminal event:", last["type"], "/", last["reason"])
print("error message:", last["error"]["error_message"])
print("kept only part of the reply:", len(last["error"]["content"][0]["text"].split()) < 100)
print("server saw the client hang up:", slow_server.wait_for_disconnect(timeout=3.0))

# %% [markdown]
# ## Errors
#
# Malformed inputs raise `ValueError` at once. Failures that happen when the request starts — a
# missing API key, an unsupported api — are raised as `RuntimeError` by the first `next_event()`
# (and by `result()`). Inside an `Agent`, both become an error assistant message instead.

# %%
try:
    _alchemy.openai_completions_stream({"id": "x"}, context, options)
except ValueError as error:
    print("ValueError:", error)

handle = _alchemy.openai_completions_stream({**model, "api": "no-such-api"}, context, options)
try:
    handle.next_event()
except RuntimeError as error:
    print("RuntimeError:", error)

# %% [markdown]
# A missing key is reported the same way: `failed to start openai-completions stream: No API key
# provided for provider: openrouter`. The key is looked up in the provider's variable
# (`OPENROUTER_API_KEY` for OpenRouter) only when the options carry none, and never echoed.
#
# For asyncio code, the handle also has a batched, non-blocking interface that the agent uses;
# `stream_alchemy_openai_completions` wraps it, so prefer that from async code.

# %%
server.stop()
slow_server.stop()
print("Servers stopped.")

# %% [markdown]
# **Next:** [09 · Abort and interrupt](09_abort_and_interrupt.ipynb).
