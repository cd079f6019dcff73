"""A widget comm that records what it would publish, so rendering is testable without a kernel.

Shared by ``tests/test_notebook_render.py`` and ``bench/notebook_render_bench.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import comm
from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """Every message it would publish, as ``(msg_type, size of the JSON data in bytes, data)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages: list[tuple[str, int, Any]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        self.messages.append((msg_type, len(json.dumps(data, default=str).encode()), data))


def install_recording_comms(
    setattr_: Callable[[Any, str, Any], None] = setattr,
) -> list[RecordingComm]:
    """Make every new widget comm a :class:`RecordingComm`; returns the list they are added to.

    Pass ``monkeypatch.setattr`` in a test so the patch is undone afterwards.
    """
    made: list[RecordingComm] = []

    def create(*args: Any, **kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(*args, **kwargs))
        return made[-1]

    setattr_(comm, "create_comm", create)
    return made


def view_messages(comms: list[RecordingComm]) -> list[tuple[str, int, Any]]:
    """The messages of the AgentView's comm (ipywidgets also opens one for its Layout)."""
    views = [
        c
        for c in comms
        if c.messages and c.messages[0][2]["state"].get("_model_name") == "AnyModel"
    ]
    assert len(views) == 1
    return views[0].messages
