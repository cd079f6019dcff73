# %% [markdown]
# # 12 · The agent in your kernel
#
# Until now the model only saw what you typed. Here it works *inside* the notebook: it looks at
# your variables without you pasting them, runs code in your namespace (after asking), sees the
# figures that code makes, and explains the traceback of a cell that failed. You will learn:
#
# - `@name` **mentions**: attach a variable's summary to a prompt,
# - `%%agent --kernel`: the tools `list_variables`, `inspect_variable` and `run_python`,
# - **approval**: `run_python` asks before it runs code, `--yes` runs without asking,
# - **figures**: a plot made by `run_python` shows in the tool card and reaches the model,
# - `%agent fix`: the last exception, explained, with a corrected cell,
# - `kernel_tools()` for an `Agent` of your own.
#
# As in every tutorial, the first cell starts the offline demo model: it calls these tools
# deterministically, so everything below runs with no key.

# %%
%load_ext tinyagent.notebook
%agent demo

# %% [markdown]
# Some data to talk about:

# %%
import pandas as pd

sales = pd.DataFrame(
    {
        "month": ["Jan", "Feb", "Mar", "Apr", "May", "Jun"],
        "units": [120, 135, 160, 158, 190, 210],
        "returns": [4, 6, 5, None, 7, 9],
    }
).set_index("month")
OPENAI_API_KEY_BACKUP = "sk-never-shown-to-the-model"

# %% [markdown]
# ## `@name`: attach a variable to the prompt
#
# `@sales` attaches what `inspect_variable` says about `sales` (shape, column types, nulls, the
# first rows and `describe()`) as a separate, labelled block after your text. The summary is
# bounded: a DataFrame with a million rows costs a few KB, never its whole `repr`. (`{sales}` would
# instead paste `str(sales)` into the text.)

# %%
%%agent
What stands out in @sales?

# %% [markdown]
# ## `--kernel`: the model looks for itself
#
# With `--kernel` (`-k`) the model gets three tools for this cell. Asked about a variable, the
# demo model first calls `list_variables`, then `inspect_variable` on the names you mentioned.
# Names that look like secrets (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`) are listed as
# `<hidden>` and never inspected, and the values of known API keys are scrubbed from everything
# the tools return.

# %%
%%agent --kernel
Which columns does sales have, and are there missing values?

# %% [markdown]
# ## `run_python`: code in your namespace, and the figure it makes
#
# `run_python` runs code the way a cell does: in your namespace, with magics, `display()`, the
# last expression's value and a traceback on errors. Whatever it prints, returns or plots is shown
# in its tool card and sent to the model; figures are sent as images (downscaled first).
#
# Code runs only after you agree: in JupyterLab or Notebook the card asks **Run / Skip / Always
# in this conversation**. `--yes` (`-y`) says yes in advance, which is what this headless tutorial
# needs:

# %%
%%agent --kernel --yes
Plot sales

# %% [markdown]
# The demo model asked for `sales.plot(...)`; the figure is in the card above and in the saved
# notebook, and the model was sent the image.
#
# Without `--yes`, in a run where nobody can click (nbval, nbconvert, papermill, as here), the
# tool refuses at once with a clear message instead of waiting for ever, and the model is told
# why:

# %%
%%agent --kernel
Run this:
```python
sales["units"].sum()
```

# %% [markdown]
# A kernel interrupt (■ in the toolbar) while `run_python` runs raises `KeyboardInterrupt` in
# that code, as in a cell: the code stops, the run ends *stopped* with its partial answer, and
# what the code did before the interrupt stays in your namespace.

# %% [markdown]
# ## `%agent fix`: explain the last traceback
#
# When a cell fails, `%agent fix` sends the exception, its traceback, the failing cell's source
# and summaries of the variables on the failing line, and asks for an explanation and a corrected
# cell. (With `--kernel` the model may try its fix with `run_python` first.)

# %% tags=["raises-exception"]
total_units = int(sales["units"].sum())
big_months = len(sales[sales["units"] > 1000])
units_per_big_month = total_units // big_months

# %%
%agent fix

# %% [markdown]
# `%%agent --code` asks for code only and puts the answer's code block into a new cell below, and
# in a live front end every code block (and every `run_python` card) has a **Copy** button.

# %% [markdown]
# ## `kernel_tools()` for your own Agent
#
# The same three tools, bound to the running kernel, for any `Agent`. `approve=False` turns off
# the question (here: nobody could answer it).

# %%
from tinyagent import Agent, AgentOptions
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.notebook import kernel_tools
from tinyagent.testing import DemoBrain, ModelServer

server = ModelServer(DemoBrain()).start()  # a demo model of its own, for this Agent
agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo", base_url=server.url))
agent.set_tools(kernel_tools(approve=False))
print([tool.name for tool in agent.state.tools])
print(await agent.prompt_text("Run `round(sales['units'].mean(), 1)`"))
