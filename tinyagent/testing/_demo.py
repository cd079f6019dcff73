"""The offline demo model's default brain (docs/notebook.md#demo-model): deterministic answers from
the request alone, so tutorials and the README quickstart run with no network and no key.

The *prompt* is the last user message that is not an image note (the ``Images returned by tool
<name> (<id>):`` message that follows tool results with images), without the variable summaries
an ``@name`` attached to it; the *turn* is every message after the prompt. Rules, in order:

1. **Run code** (``run_python`` offered): when the prompt has a fenced code block (the first
   one, its info string dropped) or inline code in backticks right after the word "run"
   (``run `x + 1` ``, ``run this: `…` ``), it calls ``run_python`` with that code, once a turn.
2. **Plot** (``run_python`` offered): when the prompt, outside code, has the word "plot",
   "chart" or "figure" (any case, whole word, or its plural): if ``list_variables`` is offered
   and not yet called this turn, it calls it first; then ``run_python``, once a turn, with
   ``import matplotlib.pyplot as plt``, ``<name>.plot(figsize=(4, 3))``, ``plt.show()`` for the
   first variable the prompt mentions that the list shows as a ``DataFrame`` or ``Series``, else
   a fixed four-point demo plot (``DEMO_PLOT`` in ``_demo_kernel.py``).
3. **Variables** (``inspect_variable`` offered, and the prompt names no offered tool besides
   ``list_variables``/``inspect_variable``): on a fresh turn it calls ``list_variables`` (when
   offered); after that result, ``inspect_variable`` for each listed, non-hidden name the prompt
   mentions as a whole word or as ``@name`` (in order of mention, at most 3, in one reply), or,
   when it mentions none, a final answer listing the variables. Without ``list_variables`` it
   inspects the prompt's ``@name`` and `` `name` `` identifiers (none: the rule does not apply).
4. **After tool results** (the request ends with ``tool`` messages, image notes skipped): one
   sentence per result, ``The <name> tool returned "<text>".``, quoting its text (cut at 500
   characters); for ``run_python``: the error line it raised, else that it produced a figure
   (images in the result or its image note, or an ``[image`` marker) and what else it printed,
   else what it printed (or that it printed nothing).
5. **Tools named in the prompt**: when the request offers tools and the last user message names
   one or more of them (case-insensitive; ``_``, ``-`` and spaces are equivalent; whole words),
   it calls each named tool once, in order of mention, after a one-line reasoning block.
   Required properties are filled in schema order: numbers (``number``/``integer``) from the
   numbers in the prompt, strings from quoted text (``"…"``, ``“…”``, ``'…'``) else the property
   name; enums take the first value the prompt mentions, else the first; booleans ``true``,
   arrays ``[]``, objects ``{}``. Numbers and quotes are consumed in order across all the calls
   of the turn and start over when used up (a prompt without numbers gives 0). Optional
   properties are left out.
6. **A JSON schema answer**: a request with ``response_format`` ``json_schema`` (``run_batch``'s
   ``output_type``) and no tool step is answered with one JSON object built from the schema
   (``$defs`` references inlined) by the argument rules of rule 5 and the last user message.
7. **Otherwise** a short Markdown reply that quotes the prompt's first line and says it comes
   from the offline demo model, preceded by a one-line reasoning block; when tools are offered
   it lists them and says how to have one called.

Rules 1-3 decide each step from the turn alone (the brain keeps no state), so list_variables →
inspect_variable → answer takes three requests; a finished sequence is answered by rule 4. Every
tool call comes after a one-line reasoning block; call ids are ``call_<turn>_<k>`` (``<turn>``
counts the assistant messages so far, plus one).

Text streams one word per delta; usage is reported, and from the second turn on the earlier
conversation counts as cached prompt tokens.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ._demo_kernel import KernelStep, image_counts, is_image_note, kernel_step, run_python_sentence
from ._reply import Reply, ToolCallSpec, Usage
from ._sse import message_text

__all__ = ["DemoBrain", "demo_arguments", "named_tools"]

_SEPARATORS = re.compile(r"[\s_\-]+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?")
_QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”|(?<!\w)'([^'\n]+)'(?!\w)")
_MAX_QUOTE = 500
_MAX_FIRST_LINE = 200


def _normalize(text: str) -> str:
    return _SEPARATORS.sub(" ", text.casefold()).strip()


def _offered_tools(request: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, parameters schema) of every function tool the request offers."""
    offered = []
    for tool in request.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            function = tool
        name = function.get("name")
        if isinstance(name, str) and name:
            params = function.get("parameters")
            offered.append((name, params if isinstance(params, dict) else {}))
    return offered


def named_tools(prompt: str, tools: list[tuple[str, dict[str, Any]]]
                ) -> list[tuple[str, dict[str, Any]]]:
    """The offered tools the prompt names, in order of first mention."""
    text = _normalize(prompt)
    hits = []
    for order, (name, params) in enumerate(tools):
        key = _normalize(name)
        if not key:
            continue
        match = re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", text)
        if match:
            hits.append((match.start(), order, name, params))
    hits.sort()
    return [(name, params) for _, _, name, params in hits]


def _number(text: str, integer: bool) -> int | float:
    clean = text.replace(",", "")
    if integer:
        return int(float(clean))
    return float(clean) if "." in clean else int(clean)


class _Source:
    """Numbers and quoted strings of the prompt, handed out in order and then again."""

    def __init__(self, prompt: str) -> None:
        self.numbers = [m.group(0) for m in _NUMBER.finditer(prompt)]
        self.quotes = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(prompt)]
        self.prompt = prompt.casefold()
        self._n = 0
        self._q = 0

    def number(self, integer: bool) -> int | float:
        if not self.numbers:
            return 0
        text = self.numbers[self._n % len(self.numbers)]
        self._n += 1
        return _number(text, integer)

    def string(self, fallback: str) -> str:
        if not self.quotes:
            return fallback
        text = self.quotes[self._q % len(self.quotes)]
        self._q += 1
        return text

    def choice(self, options: list[Any]) -> Any:
        for option in options:
            if str(option).casefold() in self.prompt:
                return option
        return options[0]


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return kind if isinstance(kind, str) else "string"


def demo_arguments(params: Mapping[str, Any], source: _Source) -> dict[str, Any]:
    """The demo model's arguments for one call: required properties only (module docstring)."""
    found = params.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    required = [r for r in params.get("required") or [] if isinstance(r, str)]
    ordered = [p for p in properties if p in required] + [r for r in required if r not in properties]
    arguments: dict[str, Any] = {}
    for prop in ordered:
        schema = properties.get(prop)
        if not isinstance(schema, dict):
            schema = {}
        enum = schema.get("enum")
        kind = _schema_type(schema)
        if isinstance(enum, list) and enum:
            arguments[prop] = source.choice(enum)
        elif kind in ("number", "integer"):
            arguments[prop] = source.number(kind == "integer")
        elif kind == "boolean":
            arguments[prop] = True
        elif kind == "array":
            arguments[prop] = []
        elif kind == "object":
            arguments[prop] = {}
        elif kind == "null":
            arguments[prop] = None
        else:
            arguments[prop] = source.string(prop)
    return arguments


def _response_schema(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of a ``response_format`` json_schema request, its ``$defs`` inlined."""
    spec = request.get("response_format")
    if not isinstance(spec, dict) or spec.get("type") != "json_schema":
        return None
    schema = (spec.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        return None
    defs = schema.get("$defs") or {}

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs.get(ref.rsplit("/", 1)[1], {}))
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(schema)  # type: ignore[no-any-return]


def _trailing_tool_results(messages: list[Any]) -> list[dict[str, Any]]:
    """The tool messages that end the conversation (skipping the image note that may follow)."""
    results: list[dict[str, Any]] = []
    for message in reversed(messages):
        if not isinstance(message, dict):
            break
        if message.get("role") == "tool":
            results.append(message)
        elif is_image_note(message):
            continue
        else:
            break
    results.reverse()
    return results


def _tool_names_by_id(messages: list[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    names[str(call.get("id"))] = str(call["function"].get("name") or "")
    return names


def _quote(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _chars_to_tokens(chars: int) -> int:
    return math.ceil(chars / 4) if chars > 0 else 0


def _enumerate_names(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


class DemoBrain:
    """The deterministic default brain of the offline demo model (rules: module docstring).

    ``delay`` paces the stream (seconds between events; 0 = as fast as possible), so live
    rendering can be watched; ``model`` names the model in the chunks (default: the request's).
    """

    def __init__(self, *, delay: float = 0.0, model: str | None = None) -> None:
        if delay < 0:
            raise ValueError("DemoBrain delay must be >= 0")
        self.delay = delay
        self.model = model

    def __call__(self, request: dict[str, Any]) -> Reply:
        messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
        offered = _offered_tools(request)
        step = kernel_step(messages, {name for name, _ in offered},
                           lambda prompt: [name for name, _ in named_tools(prompt, offered)])
        results = _trailing_tool_results(messages)
        schema = _response_schema(request)
        if step is not None:
            reply = self._kernel_reply(messages, step)
        elif schema is not None and not results:
            arguments = demo_arguments(schema, _Source(self._last_user_text(messages)))
            reply = self._reply(text=json.dumps(arguments, ensure_ascii=False))
        elif results:
            reply = self._answer_results(messages, results)
        else:
            prompt = self._last_user_text(messages)
            called = named_tools(prompt, offered)
            if called:
                reply = self._call_tools(messages, prompt, called)
            else:
                reply = self._free_form(prompt, [n for n, _ in offered])
        reply.usage = self._usage(messages, request, reply)
        return reply

    # -- the kinds of answer ----------------------------------------------------------------
    def _reply(self, **fields: Any) -> Reply:
        return Reply(chunking="words", delay=self.delay, model=self.model,
                     response_id="chatcmpl-demo", **fields)

    @staticmethod
    def _last_user_text(messages: list[dict[str, Any]]) -> str:
        for message in reversed(messages):
            if message.get("role") == "user":
                return message_text(message.get("content"))
        return ""

    def _answer_results(self, messages: list[dict[str, Any]],
                        results: list[dict[str, Any]]) -> Reply:
        names = _tool_names_by_id(messages)
        images = image_counts(messages)
        sentences = []
        for result in results:
            call_id = str(result.get("tool_call_id"))
            name = names.get(call_id, "") or "unnamed"
            if name == "run_python":
                sentences.append(run_python_sentence(message_text(result.get("content")),
                                                     images.get(call_id, 0)))
                continue
            text = _quote(message_text(result.get("content")), _MAX_QUOTE)
            sentences.append(f"The {name} tool returned \"{text}\".")
        return self._reply(text="\n".join(sentences))

    def _kernel_reply(self, messages: list[dict[str, Any]], step: KernelStep) -> Reply:
        if not step.calls:
            return self._reply(reasoning=step.reasoning, text=step.text)
        turn = 1 + sum(1 for m in messages if m.get("role") == "assistant")
        calls = [ToolCallSpec(name=name, arguments=arguments, id=f"call_{turn}_{k + 1}")
                 for k, (name, arguments) in enumerate(step.calls)]
        return self._reply(reasoning=step.reasoning, tool_calls=calls)

    def _call_tools(self, messages: list[dict[str, Any]], prompt: str,
                    called: list[tuple[str, dict[str, Any]]]) -> Reply:
        turn = 1 + sum(1 for m in messages if m.get("role") == "assistant")
        source = _Source(prompt)
        calls = [
            ToolCallSpec(name=name, arguments=demo_arguments(params, source),
                         id=f"call_{turn}_{k + 1}")
            for k, (name, params) in enumerate(called)
        ]
        names = [name for name, _ in called]
        them = "it" if len(names) == 1 else "them"
        reasoning = (f"The prompt names {_enumerate_names(names)}, so I call {them} with "
                     "arguments taken from the prompt.")
        return self._reply(reasoning=reasoning, tool_calls=calls)

    def _free_form(self, prompt: str, tool_names: list[str]) -> Reply:
        first_line = next((line.strip() for line in prompt.strip().splitlines() if line.strip()),
                          "")
        opening = (f"You wrote:\n\n> {_quote(first_line, _MAX_FIRST_LINE)}\n\n" if first_line
                   else "You sent an empty prompt.\n\n")
        text = (opening + "This reply comes from the **offline demo model**: it runs on your "
                "machine, needs no API key and gives the same answer to the same prompt. "
                "Connect a real provider for a real answer.")
        if tool_names:
            text += (f"\n\nTools on offer: {_enumerate_names(tool_names)}. Name one in your "
                     "prompt and the demo model will call it.")
        reasoning = "No tool is named in the prompt, so I reply with a short note that quotes it."
        return self._reply(reasoning=reasoning, text=text)

    # -- usage ------------------------------------------------------------------------------------
    @staticmethod
    def _usage(messages: list[dict[str, Any]], request: Mapping[str, Any], reply: Reply) -> Usage:
        sizes = [len(message_text(m.get("content"))) + len(json.dumps(m.get("tool_calls") or ""))
                 for m in messages]
        tools = request.get("tools")
        tool_chars = len(json.dumps(tools)) if tools else 0
        prompt_tokens = _chars_to_tokens(sum(sizes) + tool_chars + 4 * len(messages))
        # everything before the newest user or tool turn was sent before: a provider with a
        # prompt cache would serve it from the cache, so report it as cached from turn 2 on
        last_new = len(messages)
        while last_new > 0 and messages[last_new - 1].get("role") in ("user", "tool"):
            last_new -= 1
        has_history = any(m.get("role") == "assistant" for m in messages[:last_new])
        cached = 0
        if has_history:
            cached = _chars_to_tokens(sum(sizes[:last_new]) + tool_chars + 4 * last_new)
        output_chars = len(reply.text) + len(reply.reasoning)
        output_chars += sum(len(c.arguments_text) + len(c.name) for c in reply.tool_calls)
        return Usage(prompt_tokens=prompt_tokens, completion_tokens=_chars_to_tokens(output_chars),
                     cached_tokens=min(cached, prompt_tokens),
                     reasoning_tokens=_chars_to_tokens(len(reply.reasoning)))
