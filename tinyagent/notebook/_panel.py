"""``ChatPanel``: a chat UI bound to an Agent (docs/notebook.md#chat-panel).

The panel is an :class:`~tinyagent.notebook._widget.AgentView` of kind ``panel`` plus this
controller. Runs are tasks on the loop that is running when Send is pressed (the kernel's, in a
notebook), so the cell is not blocked and the Stop click is processed mid-run. While a run is in
progress, Send becomes "Queue": the text is queued into the running Agent as steering. Steering
that the run did not consume (it was stopped, or ended first) is removed from the Agent's queue,
so it never leaks into the next run, and is listed in the panel with "Send again".

Retry and Edit act on the panel's last turn: its messages are cut from the Agent's history and
its part of the transcript is removed, then the same (or the edited) message is sent again. Both
refuse, with the reason in the panel, when the conversation has moved on since that turn (a
``%%agent`` cell of the same conversation ran after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinyagent.agent_types import TextContent, UserMessage, now_ms

from ._attachments import AttachmentError, attachables, content_blocks
from ._conversation import AgentRun, Conversation, RunSpec, execute
from ._document import RunDocument
from ._interrupt import running_loop, start_in_worker
from ._kernel_tools import output_bounds
from ._render import LiveRenderer
from ._session import NotebookSession, session_for
from ._widget import AgentView


@dataclass
class _Turn:
    """One message the panel sent and the run that answered it."""

    prompt: Any  # the text, or the UserMessage with its attachments
    text: str  # what was typed (Edit puts it back into the composer)
    doc: RunDocument
    start: int  # the Agent's message count before the run
    end: int = -1  # and after it (-1 while it runs)


class ChatPanel:
    """``display(ChatPanel(agent=None, **config))``; ``send``/``stop``/``await wait()`` for code.

    ``config`` accepts the sticky settings ``model``, ``provider``, ``base_url``, ``system`` and
    ``models`` (the choices of the model selector). ``kernel=True`` gives the model the kernel
    tools (``list_variables``, ``inspect_variable``, ``run_python``, which asks in the panel
    before it runs code); ``kernel="auto"`` runs code without asking.
    """

    def __init__(
        self,
        agent: Any = None,
        *,
        models: list[str] | None = None,
        kernel: bool | str = False,
        **config: Any,
    ) -> None:
        if kernel not in (False, True, "auto"):
            raise ValueError(f"ChatPanel: kernel must be False, True or 'auto', not {kernel!r}")
        self.kernel = kernel
        unknown = set(config) - {"model", "provider", "base_url", "system"}
        if unknown:
            raise TypeError(f"ChatPanel: unknown settings {sorted(unknown)}")
        if agent is not None:
            self.conversation = Conversation("panel", agent, external=True)
        else:
            # the running shell's session, when the extension is loaded there: the panel and
            # its %%agent cells share the default conversation
            session = session_for()
            self.conversation = (
                session.conversation() if session is not None else Conversation("panel")
            )
        if not self.conversation.external:
            self.conversation.update_sticky(**config)
        elif config.get("system"):
            agent.set_system_prompt(config["system"])
        self._models = list(models or [])
        current = config.get("model") or self._current_model()
        if current and current not in self._models:
            self._models.insert(0, current)
        self.view = AgentView(
            kind="panel",
            running=False,
            models=self._models,
            model=current or "",
            usage="",
            queued=[],
            notice="",
            can_retry=False,
            attachables=[],
            edit={},
        )
        self.view.on_event("send", self._on_send)
        self.view.on_event("retry", lambda _msg: self.retry())
        self.view.on_event("edit", lambda _msg: self.edit_last())
        self.view.on_event("attachables", lambda _msg: self._list_attachables())
        self.view.on_event("stop", lambda _msg: self.stop())
        self.view.on_event("clear", lambda _msg: self.clear())
        self.view.on_event("model", lambda msg: self.set_model(str(msg.get("value", ""))))
        self.view.on_event("resend", self._resend)
        self.run: AgentRun | None = None
        self.queued: list[str] = []  # steering left over after a run, shown for re-sending
        self._steering: list[Any] = []  # messages this panel queued into the running Agent
        self._runs = 0
        self._turns: list[_Turn] = []
        self._edit_seq = 0  # bumped whenever the kernel puts text into the composer

    # -- display -----------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.view._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"ChatPanel({self.conversation.name!r})"

    @property
    def agent(self) -> Any:
        return self.conversation.agent

    @property
    def running(self) -> bool:
        return self.run is not None and not self.run.done

    # -- actions -----------------------------------------------------------------------------

    def send(self, text: str, attachments: list[dict[str, Any]] | None = None) -> AgentRun | None:
        """What typing ``text`` and pressing Send does; returns at once.

        ``attachments`` as the composer sends them: ``{"type": "image", "mime", "data"}``
        (base64) or ``{"type": "variable", "name"}``; a bad one is refused with the reason shown
        in the panel (and raised as :class:`ValueError` when called from code).
        """
        if not text.strip() and not attachments:
            return None
        prompt = self._prompt(text, attachments)
        self.view.update_state(notice="")
        if self.running or self.conversation.running():
            # a run of this conversation is in progress (the panel's, or a %%agent --bg cell's):
            # the text steers it (pi-style) instead of racing it
            message = prompt if not isinstance(prompt, str) else _user_message([_text(text)])
            self._steering.append(message)
            self.agent.steer(message)
            self._sync_queued()
            return self.run
        return self._start(prompt, text)

    def _prompt(self, text: str, attachments: list[dict[str, Any]] | None) -> Any:
        session = self._session()
        shell = session.shell if session is not None else _shell()
        limit, max_side = output_bounds(session.settings if session is not None else {})
        blocks = content_blocks(
            attachments, getattr(shell, "user_ns", None), limit=limit, max_side=max_side
        )
        return _user_message([_text(text), *blocks]) if blocks else text

    def retry(self) -> AgentRun | None:
        """Retry: answer the last message again, in place of the last answer."""
        turn = self._last_turn("Retry")
        if turn is None:
            return None
        self._forget(turn)
        return self._start(turn.prompt, turn.text)

    def edit_last(self) -> str | None:
        """Edit: the last message goes back into the composer; sending it replaces that turn."""
        turn = self._last_turn("Edit")
        if turn is None:
            return None
        self._to_composer(turn.text, editing=True)
        return turn.text

    def _to_composer(self, text: str, *, editing: bool) -> None:
        """Put ``text`` into the composer (``editing``: sending it replaces the last turn)."""
        self._edit_seq += 1
        self.view.update_state(edit={"text": text, "seq": self._edit_seq, "editing": editing})

    def _last_turn(self, action: str) -> _Turn | None:
        """The turn Retry/Edit would replace, or None with the reason shown."""
        problem = ""
        if self.running or self.conversation.running():
            problem = "wait for the run to end, or press Stop"
        elif not self._turns:
            problem = "there is no message to answer again yet"
        elif self._turns[-1].end != len(self.agent.state.messages):
            problem = (
                "the conversation has moved on since that answer (another cell or code added to "
                "it); send the message again instead"
            )
        if problem:
            self.view.update_state(notice=f"{action}: {problem}.")
            return None
        self.view.update_state(notice="")
        return self._turns[-1]

    def _forget(self, turn: _Turn) -> None:
        """Cut ``turn`` from the Agent's history and from the transcript."""
        self.agent.replace_messages(list(self.agent.state.messages[: turn.start]))
        self._turns.remove(turn)
        self.view.remove_parts(turn.doc.id_prefix)
        self.view.update_state(usage=self._usage(), can_retry=bool(self._turns))

    def _list_attachables(self) -> None:
        session = self._session()
        shell = session.shell if session is not None else _shell()
        namespace = getattr(shell, "user_ns", None)
        listed = [] if namespace is None else attachables(namespace, shell.user_ns_hidden)
        self.view.update_state(attachables=listed)

    def stop(self) -> None:
        """The Stop button."""
        if self.run is not None:
            self.run.stop()

    async def wait(self) -> None:
        """Return when the current run, if any, has finished."""
        if self.run is not None:
            await self.run.wait()

    def clear(self) -> None:
        """The Clear button: stop, forget the conversation and the transcript."""
        self.stop()
        self.agent.reset()
        self.queued.clear()
        self._steering.clear()
        self._turns.clear()
        self.view.reset_document()
        self.view.update_state(queued=[], usage="", notice="", can_retry=False)

    def set_model(self, model_id: str) -> None:
        if not model_id:
            return
        if self.conversation.external:
            current = self.agent.state.model
            if current is not None:
                self.agent.set_model(current.model_copy(update={"id": model_id}))
        else:
            self.conversation.sticky["model"] = model_id
        self.view.update_state(model=model_id)

    def _on_send(self, msg: dict[str, Any]) -> None:
        text = str(msg.get("text", ""))
        attachments = msg.get("attachments") or None
        try:
            if msg.get("replace_last"):  # sent from Edit: in place of the last turn
                turn = self._last_turn("Edit")
                if turn is None:
                    return
                prompt = self._prompt(text, attachments)  # refused before anything is cut
                self._forget(turn)
                self._start(prompt, text)
            else:
                self.send(text, attachments)
        except AttachmentError as exc:  # nothing was sent: the text goes back to the composer
            self.view.update_state(notice=f"Not sent: {exc}.")
            self._to_composer(text, editing=bool(msg.get("replace_last")))

    def _resend(self, msg: dict[str, Any]) -> None:
        try:
            index = int(msg.get("index", -1))
        except (TypeError, ValueError):
            return
        if 0 <= index < len(self.queued):
            text = self.queued.pop(index)
            self._sync_queued()
            self.send(text)

    # -- runs --------------------------------------------------------------------------------

    @staticmethod
    def _session() -> NotebookSession | None:
        """The running shell's session, looked up at each use as the magics do: a panel made
        before ``%load_ext`` resolves with the session's settings once it is loaded."""
        return session_for()

    def _current_model(self) -> str:
        if self.conversation.external:
            return str(getattr(self.agent.state.model, "id", "") or "")
        session = self._session()
        layers = session.config_layers() if session is not None else []
        return self.conversation.resolve(layers, {}).model

    def _start(self, prompt: Any, text: str) -> AgentRun | None:
        session = self._session()
        self._runs += 1
        doc = RunDocument(show_user=True, id_prefix=f"r{self._runs}.")
        turn = _Turn(prompt, text, doc, start=len(self.agent.state.messages))
        renderer = LiveRenderer(doc, view=self.view, embedded=True)
        run = AgentRun(self.conversation, renderer)
        resolved = None
        if not self.conversation.external:
            layers = session.config_layers() if session is not None else []
            resolved = self.conversation.resolve(layers, {})
            missing = resolved.missing_key_message()
            if missing is not None:
                run.refuse(missing)
                return run
        tools = None
        if self.conversation.tool_names and session is not None:
            tools = session.resolve_tools(self.conversation.tool_names)
        spec = RunSpec(
            prompt=prompt, resolved=resolved, tools=tools, extra_tools=self._kernel_tools()
        )
        spec.on_done.append(lambda _message: self._after_run(run, turn))
        self.run = run
        self._turns.append(turn)
        self.view.update_state(running=True, can_retry=False)
        loop = running_loop()
        if loop is not None:
            loop.create_task(execute(self.conversation, spec, run))
        else:  # no loop in this thread (a plain script): a worker-thread loop
            start_in_worker(lambda: execute(self.conversation, spec, run))
        return run

    def _kernel_tools(self) -> list[Any]:
        if not self.kernel:
            return []
        session = self._session()
        if session is not None:  # bounded as %agent config says
            return session.kernel_tools(approve=self.kernel != "auto")
        from ._kernel_tools import kernel_tools

        return kernel_tools(approve=self.kernel != "auto")

    def _after_run(self, run: AgentRun, turn: _Turn) -> None:
        """Runs on the run's loop when it ended: leftover steering, usage, controls."""
        delivered = self.agent.state.messages
        turn.end = len(delivered)
        leftover = [m for m in self._steering if not any(m is d for d in delivered)]
        if leftover:
            self.agent.clear_steering_queue()
            from ._document import message_text

            self.queued.extend(message_text(m) for m in leftover)
        self._steering.clear()
        self.view.update_state(
            running=False, usage=self._usage(), queued=list(self.queued), can_retry=True
        )

    def _sync_queued(self) -> None:
        from ._document import message_text

        pending = [message_text(m) for m in self._steering]
        self.view.update_state(queued=[*self.queued, *pending])

    def _usage(self) -> str:
        totals = {"input": 0, "output": 0, "cache_read": 0, "cost": 0.0}
        turns = 0
        for message in self.agent.state.messages:
            if getattr(message, "role", None) != "assistant":
                continue
            turns += 1
            usage = message.usage or {}
            for key in ("input", "output", "cache_read"):
                totals[key] += usage.get(key, 0) or 0
            totals["cost"] += float((usage.get("cost") or {}).get("total", 0.0) or 0.0)
        text = f"{turns} turns · in {totals['input']} · out {totals['output']}"
        if totals["cache_read"]:
            text += f" · cache read {totals['cache_read']}"
        if totals["cost"]:
            text += f" · ${totals['cost']:.4f}"
        return text


def _text(text: str) -> TextContent:
    return TextContent(text=text)


def _user_message(content: list[Any]) -> UserMessage:
    return UserMessage(content=content, timestamp=now_ms())


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the notebook extras bring IPython
        return None
    return get_ipython()


__all__ = ["ChatPanel"]
