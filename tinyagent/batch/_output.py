"""``output_type=``: ask for JSON, parse the final answer, validate it, and word the repair turn.

Where the request can carry it (an ``OpenAICompatModel`` on ``openai-completions``), the schema
goes out as ``response_format`` ``{"type": "json_schema", ...}`` through the model's
``extra_body`` (docs/wire.md#body-fields), and the prompt gets one line asking for JSON; for any
other model or stream function the schema is written into the prompt. A model whose
``extra_body`` already has a ``response_format`` key keeps it (``None`` there sends none).
The answer may be bare JSON, a fenced ```json block, or JSON inside prose; pydantic validates it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tinyagent.agent_types import Model

__all__ = ["OutputSpec"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_MAX_ERRORS = 10


class OutputSpec:
    """How one ``output_type`` is asked for and checked."""

    def __init__(self, output_type: Any) -> None:
        self.output_type = output_type
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", getattr(output_type, "__name__", "output"))[:64]
        try:
            self.adapter: TypeAdapter[Any] = TypeAdapter(output_type)
            self.schema: dict[str, Any] = self.adapter.json_schema()
        except Exception as exc:
            raise TypeError(
                f"output_type must be a pydantic model (or a type pydantic can validate): {exc}"
            ) from exc
        self.schema_text = json.dumps(self.schema, ensure_ascii=False)
        self.in_request = False  # set by request_model()

    # -- asking -----------------------------------------------------------------------------

    def request_model(self, model: Model) -> Model:
        """The batch's model, with ``response_format`` in its ``extra_body`` where it fits."""
        if type(model).__name__ != "OpenAICompatModel" or not hasattr(model, "extra_body"):
            return model
        from tinyagent._provider_routing import canonical_api

        api = canonical_api(getattr(model, "api", ""), str(model.provider or "").strip() or "openai")
        if api != "openai-completions":
            return model
        extra = dict(model.extra_body or {})
        if "response_format" in extra:
            self.in_request = extra["response_format"] is not None
            return model
        extra["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema},
        }
        self.in_request = True
        return model.model_copy(update={"extra_body": extra})

    def instruction(self) -> str:
        """Appended to each row's prompt."""
        if self.in_request:
            return "\n\nAnswer with a JSON object only, matching the requested schema."
        return (
            "\n\nAnswer with a JSON object only (no prose), matching this JSON schema:\n"
            + self.schema_text
        )

    # -- checking ---------------------------------------------------------------------------

    def parse(self, text: str) -> tuple[Any, str | None]:
        """``(value, None)``, or ``(None, what was wrong)``."""
        candidate = extract_json(text)
        try:
            return self.adapter.validate_json(candidate), None
        except ValidationError as exc:
            return None, describe_errors(exc)

    def repair_prompt(self, problems: str) -> str:
        return (
            f"Your answer did not match the required JSON schema ({self.name}):\n{problems}\n"
            "Reply again with only the corrected JSON object."
        )

    def dump(self, value: Any) -> str:
        return self.adapter.dump_json(value).decode("utf-8")

    def load(self, text: str) -> Any:
        return self.adapter.validate_json(text)


def extract_json(text: str) -> str:
    """The JSON of an answer: a fenced block's content, else the outermost ``{…}``/``[…]``."""
    text = text.strip()
    fenced = _FENCE.search(text)
    if fenced is not None:
        return fenced.group(1).strip()
    if text[:1] in "{[":
        return text
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        end = text.rfind("}" if text[start] == "{" else "]")
        if end > start:
            return text[start : end + 1]
    return text


def describe_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False)[:_MAX_ERRORS]:
        where = ".".join(str(part) for part in error.get("loc", ())) or "(answer)"
        lines.append(f"- {where}: {error.get('msg', 'invalid')}")
    more = exc.error_count() - _MAX_ERRORS
    if more > 0:
        lines.append(f"- … and {more} more")
    return "\n".join(lines)
