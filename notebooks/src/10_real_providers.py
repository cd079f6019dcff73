# %% [markdown]
# # 10 · Real providers: OpenRouter, OpenAI, MiniMax
#
# Everything in the other tutorials works unchanged against a real model: only the
# `OpenAICompatModel` changes. In this tutorial you will learn:
#
# - how a provider name picks the API, the endpoint URL and the API-key variable,
# - how to call OpenRouter, OpenAI and MiniMax,
# - how `%%agent` selects a provider, and where keys come from.
#
# **Real calls are opt-in.** The cells that contact a provider run only when you set
# `TINYAGENT_LIVE=1` *and* the provider's key. A key in your environment is never enough on its
# own, so your key (or CI's) cannot change what this notebook produces; without the opt-in each
# cell prints a clear "skipped" note. The first cell starts the **offline demo model** anyway,
# so the notebook always has something to run against.

# %%
import os

from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

# Start the offline demo model: a deterministic OpenAI-compatible server on 127.0.0.1.
server = ModelServer(cassette_brain(DemoBrain())).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

LIVE = os.environ.get("TINYAGENT_LIVE") == "1"
print("Real provider calls:", "ON (TINYAGENT_LIVE=1)" if LIVE else "off — set TINYAGENT_LIVE=1 and a key to enable them")

# %% [markdown]
# ## What a provider name decides
#
# `OpenAICompatModel(provider=..., id=...)` fills in the rest: the API (`openai-completions` for
# OpenAI-compatible endpoints, `minimax-completions` for MiniMax) and the full endpoint URL.
# The key is read from the provider's variable unless you pass one (`get_api_key` or
# `SimpleStreamOptions.api_key`). Keys never appear in a `repr`, an error or a rendered output.

# %%
from tinyagent._provider_routing import PROVIDER_KEY_ENV  # provider → key variables
from tinyagent.alchemy_provider import OpenAICompatModel

PROVIDERS = [
    ("OpenRouter", OpenAICompatModel(provider="openrouter", id="openai/gpt-4o-mini")),
    ("OpenAI", OpenAICompatModel(provider="openai", id="gpt-4o-mini")),
    ("MiniMax", OpenAICompatModel(provider="minimax", id="MiniMax-M2")),
]
for label, model in PROVIDERS:
    print(f"{label:<11} api={model.api:<20} key variable={PROVIDER_KEY_ENV[model.provider][0]}")
    print(f"{'':<11} {model.base_url}")

# %% [markdown]
# ## One question to each provider
#
# The same three lines as the quickstart. With `TINYAGENT_LIVE=1` and a key, this asks each
# provider; the answers vary from run to run, so this cell's output is not checked by the
# notebook tests (it carries nbval's `nbval-ignore-output` tag).

# %% tags=["nbval-ignore-output"]
from tinyagent import Agent, AgentOptions
from tinyagent.alchemy_provider import stream_alchemy_openai_completions


async def ask(label, model, question="In one sentence: what is an LLM agent?"):
    variable = PROVIDER_KEY_ENV[model.provider][0]
    if not LIVE or not os.environ.get(variable):
        print(f"{label}: skipped — set TINYAGENT_LIVE=1 and {variable} to call it.")
        return
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions, session_id="tutorial-10"))
    agent.set_model(model)
    message = await agent.prompt(question)
    if message.stop_reason == "error":
        print(f"{label}: error — {message.error_message}")
    else:
        usage = message.usage
        print(f"{label}: {message.content[-1].text.strip()}")
        print(f"{'':<{len(label)}}  ({usage['input']} tokens in, {usage['output']} out, {usage['cache_read']} cached)")


for label, model in PROVIDERS:
    await ask(label, model)

# %% [markdown]
# ## The same with `%%agent`
#
# The magic takes the provider and model as options (they are *sticky*: later cells keep them),
# or from `%agent config`, from `%config AgentMagics.model = ...`, or from the environment
# (`TINYAGENT_PROVIDER`, `TINYAGENT_MODEL`, `TINYAGENT_BASE_URL`). Keys come from the
# environment or from a `.env` file in the notebook's folder. `%agent config` shows which
# variable supplied the key — never its value.
#
# ```
# %%agent --provider openrouter --model openai/gpt-4o-mini
# In one sentence: what is an LLM agent?
# ```
#
# Without a key, the cell runs nothing and tells you which variable to set, and that `%agent demo`
# starts the offline model instead. To keep a real session replayable offline, record it into a
# cassette (tutorial 11).
#
# ## Any other OpenAI-compatible endpoint
#
# A local server (vLLM, llama.cpp, Ollama's OpenAI endpoint, LM Studio) is just a `base_url`:

# %%
local = OpenAICompatModel(provider="local", id="my-model", base_url="http://localhost:8000/v1/chat/completions")
print(local.api, local.base_url)

# %%
server.stop()
print("Demo model stopped.")

# %% [markdown]
# **Next:** [11 · Record and replay](11_record_and_replay.ipynb).
