# %% [markdown]
# # 13 · Batch runs over a DataFrame
#
# After one good answer comes the same question over a whole table: classify every ticket,
# extract fields from every document, score a prompt over a test set. `tinyagent.batch` runs one
# agent over many inputs — each row on a fresh copy of the agent's configuration, with
# concurrency, rate limits, retries, a budget, a resume cache and a progress bar. You will learn:
#
# - `arun_batch` / `run_batch` / `agent.map` over a DataFrame with a prompt template,
# - typed answers with `output_type` (a pydantic model),
# - a **budget**, and what happens to the rows it leaves out,
# - **resume** with `cache=`: a rerun sends nothing for finished rows,
# - `%%agent --map` in a notebook cell,
# - the Ray backend for more than one machine.
#
# The first cell starts the offline demo model, so everything runs with no key.

# %%
from tinyagent import Agent, AgentOptions
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import DemoBrain, ModelServer

server = ModelServer(DemoBrain()).start()
print("The offline demo model is running: no network, no API key, the same answer every time.")

agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))
agent.set_system_prompt("You triage customer support tickets.")

# %% [markdown]
# ## One agent, every row
#
# `prompt` is a `str.format` template over each row's columns. In a notebook cell use the async
# form, `await arun_batch(...)` (or `await agent.map(...)`); `run_batch(...)` is the blocking form
# for scripts. The progress widget shows in JupyterLab (done / failed / running, tokens, cost,
# rows/s, ETA and a Stop button); a headless run like this one shows none.

# %%
import pandas as pd

from tinyagent import arun_batch

tickets = pd.DataFrame(
    {
        "text": [
            "The app crashes when I open settings, it is a bug",
            "I love the new dashboard, praise to the team",
            "I was charged twice, I want a refund",
            "Export to CSV has a bug: the dates are wrong",
            "Please refund my annual plan",
            "Great support, quick answer, praise",
        ]
    },
    index=[101, 102, 103, 104, 105, 106],
)
result = await arun_batch(agent, tickets, prompt="Classify this ticket: {text}", concurrency=4)
print(len(result), "rows:", result.counts)
print(result[0].output.splitlines()[2])

# %% [markdown]
# Rows come back in input order. Each `BatchRow` has `index`, `input`, `output`, `error`,
# `attempts`, `usage`, `cost` and `duration`; `to_pandas()` lines them up with the input frame's
# index. Only the final answer is kept (`keep_messages=True` keeps each transcript too).

# %%
frame = result.to_pandas()
frame[["attempts", "error", "cached"]]

# %% [markdown]
# ## Typed answers: `output_type`
#
# Give a pydantic model and each answer is parsed and validated into it: the request asks for
# JSON with `response_format` where the model supports it, an answer that does not validate gets
# one repair turn, and a row that still fails is a row error, never an exception out of the batch.
# (The demo model fills the schema from the prompt: the first label the ticket names.)

# %%
from typing import Literal

from pydantic import BaseModel


class Triage(BaseModel):
    label: Literal["bug", "praise", "refund"]
    urgent: bool


typed = await agent.map(tickets, prompt="Classify this ticket: {text}", output_type=Triage)
for row in typed:
    print(row.index, row.output)

# %% [markdown]
# ## A budget
#
# `budget=` is a token count, a cost in USD, or `Budget(tokens=…, usd=…)`. No new row starts once
# the running total reaches it; the rows it leaves out say so. (One row at a time here, so the
# cut is the same on every run.)

# %%
from tinyagent import Budget

capped = await arun_batch(
    agent, tickets, prompt="Classify this ticket: {text}", concurrency=1, budget=Budget(tokens=150)
)
for row in capped:
    print(row.index, "done" if row.error is None else row.error)

# %% [markdown]
# ## Resume: `cache=`
#
# With `cache="run.sqlite"` every finished row is stored as soon as it finishes, keyed by the
# row and the agent's configuration. A rerun — after a crash, a kill or an interrupt — skips the
# finished rows and sends nothing for them.

# %%
import tempfile
from pathlib import Path

cache = Path(tempfile.mkdtemp()) / "triage.sqlite"
first = await arun_batch(agent, tickets, prompt="Classify this ticket: {text}", cache=cache)
sent = len(server.requests)
again = await arun_batch(agent, tickets, prompt="Classify this ticket: {text}", cache=cache)
print("first run:", first.counts)
print("rerun:    ", again.counts, "· requests sent by the rerun:", len(server.requests) - sent)

# %% [markdown]
# ## Mistakes are caught before anything is sent
#
# A template key that the rows do not have is an error at once, not 10,000 failed requests:

# %%
from tinyagent.batch import run_batch

try:
    await arun_batch(agent, tickets, prompt="Classify: {body}")
except Exception as exc:  # noqa: BLE001 - the tutorial shows the message
    print(f"{type(exc).__name__}: {exc}")
try:
    run_batch(agent, tickets, prompt="Classify: {text}")
except RuntimeError as exc:
    print(f"RuntimeError: {exc}")

# %% [markdown]
# ## `%%agent --map`
#
# In a notebook the same batch is a cell: the body is the template over each row of the
# DataFrame named after `--map`, with `--concurrency`, `--budget` and `--cache PATH`, and `-o`
# keeps the results as a DataFrame.

# %%
%load_ext tinyagent.notebook
%agent demo

# %%
%%agent --map tickets --concurrency 4 -o labels
Classify this ticket: {text}

# %%
labels[["attempts", "error"]]

# %% [markdown]
# ## Beyond one machine: Ray
#
# `backend="ray"` (install `tiny-agent-os[ray]`) splits the rows into blocks and runs them on Ray
# workers — of a Ray you already started with `ray.init(...)`, or a local one started for the
# call — each running the same engine with its own concurrency. The driver keeps progress, the
# budget and the resume cache; the result is the same `BatchResult`. Tools must pickle: one that
# does not is named in a clear error before anything is sent.
#
# `ray=` says how: `workers`, `block_size` (rows per Ray call), `num_cpus` per worker, and `init`,
# the `ray.init(...)` arguments of a Ray started for the call. Here a local Ray with 2 CPUs is
# started, runs the same six tickets on its two workers, and is shut down again (the start takes
# some seconds: every worker is a new process). The answers are the local run's.

# %% tags=["needs-ray"]
import logging

on_ray = await arun_batch(
    agent,
    tickets,
    prompt="Classify this ticket: {text}",
    concurrency=4,
    backend="ray",
    ray={
        "workers": 2,
        "init": {"num_cpus": 2, "log_to_driver": False, "logging_level": logging.ERROR},
    },
)
print(len(on_ray), "rows:", on_ray.counts)
print("the same answers as the local run:", on_ray.outputs == result.outputs)

# %% [markdown]
# This cell runs only where Ray is installed (the tutorial tests skip it elsewhere). The tests run
# the backend on a real local Ray (`tests/test_batch_ray.py`); `bench/README.md` has its overhead
# per row beside the local backend.
