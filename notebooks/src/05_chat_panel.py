# %% [markdown]
# # 05 · The chat panel
#
# `ChatPanel` is a small chat UI inside the notebook: a transcript rendered like `%%agent`
# output, a multi-line input, **Send** (Enter; Shift+Enter for a new line), **Stop**, a model
# selector, a usage line and **Clear**. In this tutorial you will learn:
#
# - how to show a panel bound to the default conversation (or to your own `Agent`),
# - that the panel never blocks the notebook: runs are tasks on the kernel's event loop,
# - how typing while a run is in progress **steers** it (Send becomes *Queue*),
# - how to drive the panel from code — `send`, `stop`, `await wait()` — which is also how you
#   test a notebook that uses it.
#
# The first cell loads the extension and starts the **offline demo model** (no network, no API
# key): the panel and the `%%agent` cells share its default conversation.

# %%
%load_ext tinyagent.notebook
%agent demo

# %% [markdown]
# ## Show the panel
#
# Display it like any widget. In JupyterLab, type a message and press Enter. (When this notebook
# is run headless, as for the documentation, the panel is still created and driven from code
# below; only a browser shows it.)

# %%
from tinyagent.notebook import ChatPanel

panel = ChatPanel()
panel

# %% [markdown]
# ## Drive it from code
#
# `panel.send(text)` does what typing and pressing Send does, and returns at once: the run is a
# task on the kernel's loop, so the cell finishes immediately and the notebook stays usable.
# `await panel.wait()` waits for the run to end.

# %%
from tinyagent import extract_text

panel.send("Hello from code!")
print("send() returned; the run is in progress:", panel.running)
await panel.wait()
print("finished:", not panel.running)
print(extract_text(panel.agent.state.messages[-1]).splitlines()[2])

# %% [markdown]
# ## Steering a running conversation
#
# While a run is in progress, the input becomes *steer*: what you send is queued into the running
# agent and delivered at its next stopping point, as an extra user message, before the model is
# called again. Here the second message is sent while the first run is starting, so it joins that
# run right after the prompt: the model sees both and answers once.

# %%
panel.send("Tell me about otters.")
panel.send("Actually, about beavers.")  # the run is still going: this one steers it
await panel.wait()
for message in panel.agent.state.messages[-3:]:
    text = extract_text(message)
    # the demo model's answer quotes the message it replies to on its third line
    print(f"{message.role:<10} {text.splitlines()[2] if message.role == 'assistant' else text!r}")

# %% [markdown]
# One run, two user messages, one answer (the demo model quotes the latest message): the
# steering message did not have to wait for a new run. If you press **Stop** instead, the run ends at once with the partial answer kept, and any
# steering the run did not get to is listed in the panel with a *Send again* button rather than
# silently injected into the next run.

# %%
panel.send("This run is stopped right away.")
panel.stop()
await panel.wait()
last = panel.agent.state.messages[-1]
print("stop reason:", last.stop_reason)
print("the conversation still works:", not panel.running)

# %% [markdown]
# ## Sharing the conversation with `%%agent`
#
# The panel and `%%agent` cells use the same default conversation (in turn, never at the same
# time), so a cell can continue what you typed in the panel:

# %%
%%agent
What did we talk about?

# %%
%agent usage

# %% [markdown]
# **Clear** (or `panel.clear()`) forgets the conversation and empties the transcript. To bind a
# panel to your own agent, pass it: `ChatPanel(agent)`.
#
# **Next:** [06 · Prompt caching and usage](06_prompt_caching_and_usage.ipynb).
