"""Jupyter layer of tinyagent: ``%%agent``, live rendering and the chat panel (docs/notebook.md).

``%load_ext tinyagent.notebook`` registers the ``%agent``/``%%agent`` magics and the input
transformer that runs ``%%agent`` cells on the kernel's event loop. ``ChatPanel`` is a chat UI
bound to an Agent (``display(ChatPanel())``). ``function_tool`` turns a plain Python function into
an ``AgentTool``.
"""

from __future__ import annotations

from typing import Any

from ._tools import function_tool

__all__ = ["ChatPanel", "function_tool", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    # the panel pulls in ipywidgets/anywidget: only when asked for
    if name == "ChatPanel":
        from ._panel import ChatPanel

        return ChatPanel
    raise AttributeError(name)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the ``%%agent`` input transformer; loading twice is harmless."""
    from . import _magics
    from ._config import load_dotenv
    from ._interrupt import install_transformer

    load_dotenv()
    if _magics._ACTIVE is None or _magics._ACTIVE.shell is not ipython:
        magics = _magics.AgentMagics(shell=ipython)
        ipython.register_magics(magics)
        _magics._ACTIVE = magics
    # The transformer makes %%agent cells a top-level await on the kernel's loop. A terminal
    # IPython runs top-level awaits with run_until_complete, where Ctrl-C would leave the run's
    # task pending on that loop: there the synchronous magic path (worker loop, joined, Ctrl-C
    # aborts) is the right one, so the transformer is only installed in kernels.
    if getattr(ipython, "kernel", None) is not None:
        install_transformer(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from . import _magics
    from ._interrupt import uninstall_transformer

    uninstall_transformer(ipython)
    active = _magics._ACTIVE
    if active is not None:
        servers = [active.demo_server, *active.cassette_servers.values()]
        active.demo_server = None
        active.cassette_servers.clear()
        for server in servers:
            if server is not None:
                server.stop()
