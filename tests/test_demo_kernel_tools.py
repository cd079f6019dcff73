"""The demo model drives the kernel tools (run_python, list_variables, inspect_variable) as its
module docstring says: each request → reply step, and a whole run through the loopback server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

# imported here, not on the first tool call inside the liveness bound (it can take seconds)
import jsonschema.validators  # noqa: F401
from support.agent_support import LIVENESS_SECONDS

from tinyagent import Agent, AgentOptions, AgentTool, AgentToolResult, ImageContent, TextContent
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import DemoBrain, ModelServer, Reply
from tinyagent.testing._demo_kernel import DEMO_PLOT


def tool(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": f"the {name} tool",
        "parameters": {"type": "object", "properties": properties, "required": required}}}


LIST = tool("list_variables", {}, [])
INSPECT = tool("inspect_variable", {"name": {"type": "string"}}, ["name"])
RUN = tool("run_python", {"code": {"type": "string"}}, ["code"])
SUM = tool("sum", {"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"])
KERNEL = [LIST, INSPECT, RUN]
LISTING = "df: DataFrame shape=(3, 2)\nn: int 3\nAPI_KEY: <hidden>\ns: Series shape=(3,)"
PNG = "data:image/png;base64,iVBORw0KGgo="

Call = tuple[str, dict[str, Any]]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def ask(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    return DemoBrain()({"model": "demo", "messages": messages, "tools": tools})


def calls(reply: Reply) -> list[Call]:
    return [(c.name, dict(c.arguments) if not isinstance(c.arguments, str) else {})
            for c in reply.tool_calls]


def image_note(name: str, call_id: str) -> dict[str, Any]:
    return {"role": "user", "content": [
        {"type": "text", "text": f"Images returned by tool {name} ({call_id}):"},
        {"type": "image_url", "image_url": {"url": PNG}}]}


def converse(prompt: str | dict[str, Any], tools: list[dict[str, Any]],
             results: dict[str, str], *, images: frozenset[str] = frozenset(),
             history: list[dict[str, Any]] | None = None) -> tuple[list[list[Call]], str]:
    """Play the agent loop against the brain: every tool call gets ``results[name]`` (plus an
    image note for the names in ``images``). Returns the calls of each step and the final text."""
    messages = list(history or []) + [user(prompt) if isinstance(prompt, str) else prompt]
    steps: list[list[Call]] = []
    for _ in range(6):
        reply = ask(messages, tools)
        if not reply.tool_calls:
            return steps, reply.text
        assert reply.reasoning and "\n" not in reply.reasoning
        steps.append(calls(reply))
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments_text}}
            for c in reply.tool_calls]})
        notes = []
        for c in reply.tool_calls:
            messages.append({"role": "tool", "tool_call_id": c.id, "content": results[c.name]})
            if c.name in images:
                notes.append(image_note(c.name, str(c.id)))
        messages.extend(notes)
    raise AssertionError("the demo model never answered")


# -- rule 1: run code --------------------------------------------------------------------------
def test_fenced_code_is_run_once_and_its_output_answered() -> None:
    prompt = "Please run this:\n```python\nfor i in range(2):\n    print(i)\n```"
    steps, text = converse(prompt, KERNEL, {"run_python": "0\n1"})
    assert steps == [[("run_python", {"code": "for i in range(2):\n    print(i)"})]]
    assert text == 'The run_python tool ran the code and printed "0\n1".'


def test_inline_code_after_run() -> None:
    steps, text = converse("run `1 + 1` for me", [RUN], {"run_python": "(no output)"})
    assert steps == [[("run_python", {"code": "1 + 1"})]]
    assert text == "The run_python tool ran the code; it printed nothing."
    # inline code without "run" is not code to run
    free = ask([user("what is `1 + 1`?")], [RUN])
    assert not free.tool_calls and "Tools on offer: `run_python`" in free.text


def test_code_beats_the_plot_word_and_errors_are_reported() -> None:
    prompt = "Make a figure: ```plt.plot(xs)```"
    error = "Traceback (most recent call last):\n  File \"<cell>\", line 1\nNameError: name 'xs'"
    steps, text = converse(prompt, KERNEL, {"run_python": error})
    assert steps == [[("run_python", {"code": "plt.plot(xs)"})]]
    assert text == "The run_python tool ran the code, which raised an error: \"NameError: name 'xs'\"."


# -- rule 2: plot ------------------------------------------------------------------------------
def test_plot_without_list_variables_runs_the_demo_plot_and_sees_the_figure() -> None:
    steps, text = converse("Can you PLOT something?", [RUN], {"run_python": "(no output)"},
                           images=frozenset({"run_python"}))
    assert steps == [[("run_python", {"code": DEMO_PLOT})]]
    assert DEMO_PLOT.startswith("import matplotlib.pyplot as plt\n")
    assert DEMO_PLOT.endswith('ax.set_title("demo plot")\nplt.show()')
    assert text == "The run_python tool ran the code and produced a figure."


def test_plot_of_a_listed_dataframe() -> None:
    steps, text = converse("draw a chart of @df", KERNEL, {
        "list_variables": LISTING, "run_python": "<Axes: >"}, images=frozenset({"run_python"}))
    assert steps == [[("list_variables", {})], [("run_python", {
        "code": "import matplotlib.pyplot as plt\ndf.plot(figsize=(4, 3))\nplt.show()"})]]
    assert text == 'The run_python tool ran the code and produced a figure; it also printed "<Axes: >".'


def test_plot_of_a_non_frame_falls_back_to_the_demo_plot() -> None:
    steps, _ = converse("plot n", KERNEL, {"list_variables": LISTING, "run_python": "[image 1]"})
    assert steps == [[("list_variables", {})], [("run_python", {"code": DEMO_PLOT})]]
    # an "[image" marker in the result text counts as a figure too
    _, text = converse("plot n", [RUN], {"run_python": "[image 1]"})
    assert text == "The run_python tool ran the code and produced a figure."


def test_plot_word_inside_code_or_words_does_not_count() -> None:
    reply = ask([user("the plotter broke, see `df.plot`")], [RUN])
    assert not reply.tool_calls


# -- rule 3: variables -------------------------------------------------------------------------
def test_list_then_inspect_mentioned_names_then_answer() -> None:
    prompt = "compare s with @df (and API_KEY, n, df again)"
    steps, text = converse(prompt, [LIST, INSPECT], {
        "list_variables": LISTING, "inspect_variable": "df: DataFrame 3 rows"})
    # order of mention, hidden names skipped, at most 3, all in one reply
    assert steps == [[("list_variables", {})], [("inspect_variable", {"name": "s"}),
                                                ("inspect_variable", {"name": "df"}),
                                                ("inspect_variable", {"name": "n"})]]
    assert text == "\n".join(['The inspect_variable tool returned "df: DataFrame 3 rows".'] * 3)


def test_call_ids_and_reasoning_of_each_step() -> None:
    first = ask([user("what is in df?")], KERNEL)
    assert [c.id for c in first.tool_calls] == ["call_1_1"]
    assert first.reasoning == "The prompt may name notebook variables, so I first list the " \
                              "notebook's variables."
    second = ask([user("what is in df?"),
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1_1", "type": "function",
                       "function": {"name": "list_variables", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "call_1_1", "content": LISTING}], KERNEL)
    assert calls(second) == [("inspect_variable", {"name": "df"})]
    assert [c.id for c in second.tool_calls] == ["call_2_1"]
    assert second.reasoning == "The prompt mentions `df`, so I inspect it."


def test_no_listed_name_mentioned_answers_from_the_list() -> None:
    steps, text = converse("hello", [LIST, INSPECT], {"list_variables": LISTING})
    assert steps == [[("list_variables", {})]]
    assert text == ("The notebook's variables (from list_variables):\n\n"
                    "- `df`: DataFrame shape=(3, 2)\n- `n`: int 3\n- `API_KEY`: <hidden>\n"
                    "- `s`: Series shape=(3,)\n\n"
                    "Mention one by name (or as `@name`) and the demo model will inspect it.")
    _, empty = converse("hello", [LIST, INSPECT], {"list_variables": "(no user variables)"})
    assert empty == "The notebook has no user variables yet."


def test_without_list_variables_explicit_names_are_inspected() -> None:
    steps, _ = converse("look at `frame` and @rows, not plain words", [INSPECT],
                        {"inspect_variable": "x"})
    assert steps == [[("inspect_variable", {"name": "frame"}),
                      ("inspect_variable", {"name": "rows"})]]
    free = ask([user("look at frame")], [INSPECT])
    assert not free.tool_calls and free.text.startswith("You wrote:")


def test_another_named_tool_keeps_the_named_tools_rule() -> None:
    steps, text = converse("use sum on 2 and 3", [SUM, *KERNEL], {"sum": "5"})
    assert steps == [[("sum", {"a": 2, "b": 3})]]
    assert text == 'The sum tool returned "5".'


def test_attached_summaries_are_not_mentions() -> None:
    prompt = {"role": "user", "content": [
        {"type": "text", "text": "summarise @df"},
        {"type": "text", "text": "Variable @df (from inspect_variable):\ndf: DataFrame; n and s"}]}
    steps, _ = converse(prompt, [LIST, INSPECT], {"list_variables": LISTING,
                                                  "inspect_variable": "ok"})
    assert steps == [[("list_variables", {})], [("inspect_variable", {"name": "df"})]]


def test_a_new_prompt_starts_a_new_sequence() -> None:
    history = [user("plot it"),
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1_1", "type": "function",
                    "function": {"name": "run_python", "arguments": json.dumps({"code": "x"})}}]},
               {"role": "tool", "tool_call_id": "call_1_1", "content": "(no output)"},
               image_note("run_python", "call_1_1"),
               {"role": "assistant", "content": "done"}]
    reply = ask([*history, user("and a chart too")], [RUN])
    assert calls(reply) == [("run_python", {"code": DEMO_PLOT})]
    assert [c.id for c in reply.tool_calls] == ["call_3_1"]


# -- through the real loopback server, with an Agent -------------------------------------------
def kernel_agent_tools(log: list[tuple[str, dict[str, Any]]]) -> list[AgentTool]:
    def fixed(name: str, *content: Any) -> AgentTool:
        async def execute(tool_call_id: str, args: dict, signal: Any, on_update: Any
                          ) -> AgentToolResult:
            log.append((name, dict(args)))
            return AgentToolResult(content=list(content))

        schema = json.loads(json.dumps(next(t for t in KERNEL if t["function"]["name"] == name)
                                       ["function"]["parameters"]))
        return AgentTool(name=name, description=f"the {name} tool", parameters=schema,
                         execute=execute)

    return [fixed("list_variables", TextContent(text=LISTING)),
            fixed("inspect_variable", TextContent(text="df: DataFrame with 3 rows")),
            fixed("run_python", TextContent(text="<Axes: >"),
                  ImageContent(url=PNG, mime_type="image/png"))]


def run_agent(prompt: str) -> tuple[str, list[tuple[str, dict[str, Any]]], list[Any]]:
    log: list[tuple[str, dict[str, Any]]] = []
    with ModelServer(DemoBrain()) as server:
        agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions,
                                   get_api_key=lambda provider: "unused"))
        agent.set_model(OpenAICompatModel(provider="demo", id="tinyagent-demo",
                                          base_url=server.url, max_retries=0))
        agent.set_tools(kernel_agent_tools(log))
        text = asyncio.run(asyncio.wait_for(agent.prompt_text(prompt), LIVENESS_SECONDS))
        bodies = [r.body for r in server.requests]
    return text, log, bodies


def test_agent_plots_a_listed_frame_over_http() -> None:
    text, log, bodies = run_agent("Plot df, please.")
    assert log == [("list_variables", {}), ("run_python", {
        "code": "import matplotlib.pyplot as plt\ndf.plot(figsize=(4, 3))\nplt.show()"})]
    assert len(bodies) == 3
    assert text == 'The run_python tool ran the code and produced a figure; it also printed "<Axes: >".'


def test_agent_lists_inspects_and_answers_over_http() -> None:
    text, log, bodies = run_agent("What columns does @df have?")
    assert log == [("list_variables", {}), ("inspect_variable", {"name": "df"})]
    assert len(bodies) == 3
    assert text == 'The inspect_variable tool returned "df: DataFrame with 3 rows".'


def test_a_refused_or_skipped_run_is_not_reported_as_run() -> None:
    from tinyagent.testing._demo_kernel import run_python_sentence

    refused = "run_python asks before it runs code, ... so the code was not run."
    assert run_python_sentence(refused, 0).startswith("The run_python tool did not run the code")
    assert run_python_sentence("[1 image attached]", 1) == (
        "The run_python tool ran the code and produced a figure."
    )
