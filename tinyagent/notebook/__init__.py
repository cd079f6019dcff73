"""Jupyter layer of tinyagent: ``%%agent``, live rendering and the chat panel (docs/notebook.md).

``%load_ext tinyagent.notebook`` registers the ``%agent``/``%%agent`` magics and the input
transformer that runs ``%%agent`` cells on the kernel's event loop. ``ChatPanel`` is a chat UI
bound to an Agent (``display(ChatPanel())``). ``function_tool`` turns a plain Python function into
an ``AgentTool``; ``kernel_tools()`` gives a model ``list_variables`` and ``inspect_variable`` over
the running kernel's namespace.
"""

from __future__ import annotations

from typing import Any

from ._kernel_tools import kernel_tools
from ._tools import function_tool

__all__ = [
    "ChatPanel",
    "function_tool",
    "kernel_tools",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    # the panel pulls in ipywidgets/anywidget: only when asked for
    if name == "ChatPanel":
        from ._panel import ChatPanel

        return ChatPanel
    raise AttributeError(name)


def load_ipython_extension(ipython: Any) -> None:
    """Give the shell its session and register the magics and the ``%%agent`` input transformer;
    loading twice (or ``%reload_ext``) keeps the session and registers nothing twice."""
    from ._config import load_dotenv
    from ._interrupt import install_transformer
    from ._magics import AgentMagics
    from ._session import open_session

    load_dotenv()
    _, created = open_session(ipython)
    if created:
        # the magics are thin methods over the shell's session: one registration per shell
        ipython.register_magics(AgentMagics(shell=ipython))
    # The transformer makes %%agent cells a top-level await on the kernel's loop. A terminal
    # IPython runs top-level awaits with run_until_complete, where Ctrl-C would leave the run's
    # task pending on that loop: there the synchronous magic path (worker loop, joined, Ctrl-C
    # aborts) is the right one, so the transformer is only installed in kernels.
    if getattr(ipython, "kernel", None) is not None:
        install_transformer(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the transformer and stop the session's servers; the session (its conversations)
    stays on the shell, so ``%reload_ext`` continues where it was."""
    from ._interrupt import uninstall_transformer
    from ._session import session_for

    uninstall_transformer(ipython)
    session = session_for(ipython)
    if session is not None:
        session.stop_servers()
