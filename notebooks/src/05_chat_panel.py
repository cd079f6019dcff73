# %% [markdown]
# # 05 · The chat panel
#
# `ChatPanel` is a chat UI inside the notebook. The transcript shows your turns as bubbles and
# the agent's answers like `%%agent` output: thinking collapsed with a live timer, tool cards
# with their status, arguments and result, and banners that say why a run stopped. It follows the
# stream until you scroll up (then **Jump to latest** brings you back). The composer grows with
# your text: **Enter** sends, **Shift+Enter** is a new line, **Escape** stops the run, **Up**
# recalls your last message. One button is **Send**, **Stop** while a run goes, and **Queue**
# when you type during a run. **Retry** answers your last message again, **Edit last** lets you
# change it, **Attach** adds a kernel variable or figure, and you can paste or drop an image.
# Every code block has **Copy**. A model selector, a usage line and **Clear** complete it.
#
# In this tutorial you will learn:
#
# - how to show a panel bound to the default conversation (or to your own `Agent`),
# - that the panel never blocks the notebook: runs are tasks on the kernel's event loop,
# - how typing while a run is in progress **steers** it,
# - how Retry, Edit and attachments work, from code too,
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
# ## Retry and Edit
#
# **Retry** (`panel.retry()`) sends your last message again and puts the new answer in place of
# the old one: the history keeps one exchange, not two. **Edit last** puts that message back in
# the composer; sending it replaces the turn. (The demo model gives the same answer to the same
# prompt, so here the retried answer reads the same; a real model would write a new one.)

# %%
before = len(panel.agent.state.messages)
panel.retry()
await panel.wait()
print("messages before and after Retry:", before, len(panel.agent.state.messages))

# %% [markdown]
# ## Attachments
#
# Paste or drop an image into the panel, or pick a variable from **Attach**: a figure goes to the
# model as a PNG, any other variable as the same bounded summary `inspect_variable` gives. From
# code, pass `attachments=`: `{"type": "variable", "name": ...}`, or `{"type": "image", "mime":
# "image/png", "data": <base64>}`. A bad one is refused with the reason, before anything is sent.

# %%
temperatures = [18.5, 21.0, 19.25, 23.5]
panel.send("Which day was warmest?", attachments=[{"type": "variable", "name": "temperatures"}])
await panel.wait()
sent = panel.agent.state.messages[-2]
for block in sent.content:
    print(block.type, "|", block.text.splitlines()[0])

try:
    panel.send("And this?", attachments=[{"type": "variable", "name": "no_such_variable"}])
except ValueError as exc:
    print("refused:", exc)

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
