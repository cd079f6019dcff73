# %% [markdown]
# # 11 · Record and replay
#
# A notebook that talks to a real model gives a different answer every time, costs money, and
# needs a key and a network. **Record/replay** fixes all three: record a real session once into a
# *cassette*, then replay it anywhere — tests, CI, a laptop on a plane — with byte-identical
# streams. You will learn:
#
# - how `RecordingBrain` forwards requests to a real provider and writes the cassette,
# - what a cassette holds (and that **keys are never in it**),
# - how `ReplayBrain` serves it, and how it **fails loudly** on a request it has not seen,
# - the `TINYAGENT_CASSETTE` switch that makes a whole notebook record or replay.
#
# The first cell starts the **offline demo model**. In this tutorial it plays the part of the
# "real provider", so everything runs offline; with a real provider only the upstream URL and
# the key change.

# %%
from pathlib import Path

from tinyagent.testing import DemoBrain, ModelServer, RecordingBrain, ReplayBrain

# Start the offline demo model: here it stands in for a real provider (no network, no API key).
provider = ModelServer(DemoBrain()).start()
print("The offline demo model is running, standing in for a real provider.")

CASSETTE = Path("tutorial-11.jsonl")
CASSETTE.unlink(missing_ok=True)  # start from an empty cassette

# %%
from tinyagent import Agent, AgentOptions, AgentTool, AgentToolResult, TextContent, extract_text
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions


async def calculate_sum(tool_call_id, args, signal, on_update):
    return AgentToolResult(content=[TextContent(text=str(args["a"] + args["b"]))])


sum_tool = AgentTool(
    name="sum",
    description="Add two numbers",
    parameters={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
    execute=calculate_sum,
)


def new_agent(url):
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions, session_id="tutorial-11"))
    agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=url))
    agent.set_tools([sum_tool])
    return agent


# %% [markdown]
# ## Record
#
# A `RecordingBrain` is a brain for the loopback `ModelServer`: each request the agent sends is
# forwarded to the upstream endpoint with the upstream key, the answer is served to the agent
# unchanged, and the exchange is appended to the cassette. The agent only ever talks to the
# local server.

# %%
UPSTREAM_KEY = "sk-this-key-must-never-be-stored"
recorder = RecordingBrain(CASSETTE, provider.url, api_key=UPSTREAM_KEY)
with ModelServer(recorder) as recording:
    recorded = await new_agent(recording.url).prompt("Please use sum to add 2 and 40.")
print(extract_text(recorded))
print("exchanges recorded:", recorder.recorded)

# %% [markdown]
# ## What a cassette holds
#
# One JSON line per exchange: a hash of the **normalized** request (fields that change from run
# to run without changing the question — the session id, `stream_options`, `user` — are left
# out), the request itself, the HTTP status, the content type and the response body, byte for
# byte. Request headers are never stored, and the upstream key is scrubbed from everything.

# %%
import json

entries = [json.loads(line) for line in CASSETTE.read_text(encoding="utf-8").splitlines()]
for entry in entries:
    print(f"key {entry['key'][:12]}…  status {entry['status']}  {entry['content_type']}")
    print(f"  request: {len(entry['request']['messages'])} message(s), last role {entry['request']['messages'][-1]['role']!r}")
    print(f"  body:    {entry['body'].splitlines()[0][:70]}…")
print("the key is in the cassette:", UPSTREAM_KEY in CASSETTE.read_text(encoding="utf-8"))

# %% [markdown]
# ## Replay
#
# A `ReplayBrain` answers each request with the recording whose hash matches. The agent cannot
# tell the difference — and neither can the bytes: below, the replayed SSE body is compared with
# the recorded one.

# %%
import httpx

provider.stop()  # the "provider" is gone: replay needs nothing but the cassette
replay_brain = ReplayBrain(CASSETTE)
with ModelServer(replay_brain) as replay:
    agent = new_agent(replay.url)
    replayed = await agent.prompt("Please use sum to add 2 and 40.")
    first_request = replay.requests[0].body
    served = httpx.post(replay.url, json=first_request, timeout=5.0).content
print(extract_text(replayed))
print("same answer:", extract_text(replayed) == extract_text(recorded))
print("byte-identical stream:", served == entries[0]["body"].encode("utf-8"))

# %% [markdown]
# ## An unseen request fails loudly
#
# If the notebook changed — a different prompt, tool or system prompt — the request no longer
# matches the cassette. Replay never guesses: the server answers HTTP 500 with a message naming
# the cassette, and the run ends with that error, so a stale cassette cannot pass silently.
# `prompt_text` raises it as an `AgentRunError`, which carries the final message (`prompt` would
# return that message and log the error).

# %%
from tinyagent import AgentRunError

with ModelServer(replay_brain) as replay:
    try:
        await new_agent(replay.url).prompt_text("A question nobody recorded.")
    except AgentRunError as err:
        print("stop reason:", err.message.stop_reason)
        print(err)
print("unknown requests so far:", len(replay_brain.misses))

# %% [markdown]
# ## In a notebook: `%%agent --record` and `--replay`
#
# The magic does the same for one cell. `--record PATH` sends the cell through a recording
# server to the conversation's real endpoint (here the demo model, started by `%agent demo`);
# `--replay PATH` answers from the cassette, with no network and no key. The replaying cell
# below uses a separate, named conversation, so its request is the same as the recorded one.

# %%
%load_ext tinyagent.notebook
%agent demo

# %%
%%agent --record magic-cell.jsonl
What is a cassette?

# %%
%%agent --name replayed --provider local --replay magic-cell.jsonl
What is a cassette?

# %%
Path("magic-cell.jsonl").unlink()

# %% [markdown]
# ## A whole notebook: `TINYAGENT_CASSETTE`
#
# Every tutorial starts its model server with `cassette_brain(DemoBrain())`. That helper returns
# the demo brain unless the `TINYAGENT_CASSETTE` environment variable says otherwise:
#
# | `TINYAGENT_CASSETTE` | the brain |
# |---|---|
# | unset | the brain you passed (here the demo model) |
# | `replay:PATH` | a `ReplayBrain` serving `PATH` |
# | `record:PATH` | a `RecordingBrain` writing `PATH`, forwarding to `TINYAGENT_BASE_URL` or the default URL of `TINYAGENT_PROVIDER`, with that provider's key |
#
# When recording, `TINYAGENT_MODEL` replaces the model id the notebook asks for (e.g. the demo's
# `tinyagent-demo`) with a real one; replay maps requests onto the cassette's model the same way.
# So: record once with a real provider, commit the cassette, and replay it everywhere.

# %%
from tinyagent.testing import cassette_brain

for value in ["", f"replay:{CASSETTE}"]:
    brain = cassette_brain(DemoBrain(), env={"TINYAGENT_CASSETTE": value})
    print(f"TINYAGENT_CASSETTE={value!r:<28} → {type(getattr(brain, 'brain', brain)).__name__}")

try:
    cassette_brain(DemoBrain(), env={"TINYAGENT_CASSETTE": "replay"})
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# From a shell, the same cassette can be served to any client:
# `python -m tinyagent.testing --replay tutorial-11.jsonl` prints the URL to use.

# %%
CASSETTE.unlink()
print("Cassette removed; the tutorial leaves nothing behind.")
