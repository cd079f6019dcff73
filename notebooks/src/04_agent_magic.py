# %% [markdown]
# # 04 · The `%%agent` magic
#
# In a notebook you rarely want to write the `Agent` boilerplate. The `%%agent` cell magic turns
# a cell into a prompt: the cell body is what you ask, the answer renders below it — Markdown,
# reasoning in a collapsed section, one card per tool call and a footer with the token usage.
# In this tutorial you will learn:
#
# - loading the extension and choosing a model,
# - **multi-turn** conversations (consecutive cells continue one conversation),
# - `{name}` **interpolation** of Python values into the prompt,
# - the most useful **options**: `--system`, `--tools`, `--out`, `--name`, `--new`, `--format`,
#   `--quiet`,
# - the `%agent` line commands: `history`, `usage`, `reset`.
#
# The first cell loads the extension and starts the **offline demo model** with `%agent demo`:
# a deterministic model on a loopback server, no network and no API key. Without it (and with
# no API key configured) a `%%agent` cell tells you which variable to set instead of failing.

# %%
%load_ext tinyagent.notebook
%agent demo

# %% [markdown]
# ## Ask something
#
# The cell body is the prompt. In JupyterLab the answer streams in live; when the notebook runs
# headless (nbconvert, nbval, CI) it is rendered once, in its final form, as you see here.

# %%
%%agent
What is a Jupyter magic?

# %% [markdown]
# ## Multi-turn memory
#
# The next `%%agent` cell continues the same conversation: the model receives the whole history.
# `%agent history` shows it. (The demo model only quotes your latest message, but the history it
# received is complete.)

# %%
%%agent
And what does the double percent sign mean?

# %%
%agent history

# %% [markdown]
# ## Interpolating Python values: `{name}`
#
# `{name}` and `{name.attr}` in the cell body are replaced by `str()` of that value. Nothing is
# evaluated: indexing, calls and expressions stay as written, and so do unknown names. Write
# `{{` and `}}` for literal braces.

# %%
city = "Lisbon"
trip = {"days": 3}

# %%
%%agent
Plan {trip} for {city}. Unknown {names} stay, {{braces}} are escaped, {city.upper()} is not run.

# %% [markdown]
# ## Tools from plain functions, and `--out`
#
# `--tools` takes names from the notebook namespace: `AgentTool` objects, or plain Python
# functions, which become tools from their signature, type hints and docstring. Sync functions run
# in a worker thread so the notebook stays responsive. `--out VAR` stores the final assistant
# message in a variable. Tools are *sticky*: later cells of the conversation keep them.

# %%
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())

# %%
%%agent --tools add,word_count --out answer
Use add for 2 and 40, then word_count on "the quick brown fox".

# %%
from tinyagent import extract_text

print(answer.stop_reason)
print(extract_text(answer))

# %% [markdown]
# ## A system prompt, a fresh start, plain text, no output
#
# `--system` sets the system prompt (sticky). `--new` starts the conversation afresh with the same
# settings, and `--format text` shows the answer as plain text instead of Markdown. `--quiet`
# renders nothing but still keeps the history and `--out`. (`--name NAME` keeps a separate,
# named conversation, so several can run side by side.)

# %%
%%agent --new --system "You answer in verse." --format text
Write about the sea.

# %%
%%agent --quiet --out quiet_answer
Write about the mountains.

# %%
print("quiet run stored:", extract_text(quiet_answer).splitlines()[2])

# %% [markdown]
# ## Usage and reset
#
# `%agent usage` lists tokens per model call (in, out, cached) and the total; `%agent reset`
# forgets the default conversation but keeps its model, system prompt and tools.

# %%
%agent usage

# %%
%agent reset
%agent history

# %% [markdown]
# `%agent help` prints every option and subcommand (`%%agent?` shows the same in the pager of an
# interactive front end); `%agent doctor` prints what a bug report needs.
#
# **Next:** [05 · The chat panel](05_chat_panel.ipynb).
