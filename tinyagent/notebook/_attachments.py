"""What a panel message carries besides its text (docs/notebook.md#attachments).

The composer attaches images (pasted or dropped: the view sends their bytes as base64) and the
kernel's variables (picked from the Attach menu: the view sends only the name). A variable holding
a matplotlib figure (or axes) goes to the model as a PNG, any other variable as the summary
``inspect_variable`` gives, labelled as an ``@mention`` in a ``%%agent`` cell labels it. Every
check a person can fail says what was wrong, and nothing is sent then.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from typing import Any

from tinyagent._tool_functions import ToolError
from tinyagent.agent_types import ImageContent, TextContent

from ._kernel_tools import downscaled, inspect_variable, is_secret_name, user_variables

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: the largest image the composer takes (what providers accept is about this order)
MAX_IMAGE_BYTES = 8 * 1024 * 1024
#: how many variables the Attach menu lists
MAX_LISTED = 60


class AttachmentError(ValueError):
    """An attachment that cannot be sent; the message says why and what to do."""


def _figure(value: Any) -> Any:
    """The matplotlib figure ``value`` is or belongs to (duck-typed: no matplotlib import)."""
    if callable(getattr(value, "savefig", None)) and callable(getattr(value, "get_axes", None)):
        return value
    get_figure = getattr(value, "get_figure", None)
    if callable(get_figure) and not isinstance(value, type):
        try:
            figure = get_figure()
        except Exception:  # noqa: BLE001 - an object with an odd get_figure is just a variable
            return None
        if callable(getattr(figure, "savefig", None)):
            return figure
    return None


def attachables(
    namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """The Attach menu: the user's variables (figures first), secrets left out."""
    listed: list[dict[str, str]] = []
    for name, value in user_variables(namespace, hidden):
        if is_secret_name(name):
            continue
        kind = "figure" if _figure(value) is not None else "variable"
        listed.append({"name": name, "kind": kind, "type": type(value).__name__})
    listed.sort(key=lambda item: (item["kind"] != "figure", item["name"].lower()))
    return listed[:MAX_LISTED]


def _image(mime: str, data: bytes, max_side: int) -> ImageContent:
    mime, data = downscaled(mime, data, max_side)
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return ImageContent(url=url, mime_type=mime)


def _pasted_image(attachment: Mapping[str, Any], max_side: int) -> ImageContent:
    name = str(attachment.get("name") or "the image")
    mime = str(attachment.get("mime") or "")
    if mime not in IMAGE_MIMES:
        raise AttachmentError(
            f"{name}: {mime or 'this file type'} cannot be sent; attach a PNG, JPEG, GIF or "
            "WebP image"
        )
    try:
        data = base64.b64decode(str(attachment.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentError(
            f"{name}: the image's bytes did not arrive intact; attach it again"
        ) from None
    if not data:
        raise AttachmentError(f"{name}: the image is empty; attach it again")
    if len(data) > MAX_IMAGE_BYTES:
        raise AttachmentError(
            f"{name}: {len(data) / 1e6:.1f} MB is more than the {MAX_IMAGE_BYTES // 10**6} MB "
            "an attached image may have; attach a smaller one"
        )
    try:
        return _image(mime, data, max_side)
    except OSError:  # Pillow's UnidentifiedImageError: the bytes are not that kind of image
        raise AttachmentError(f"{name}: this is not a {mime} image that can be read") from None


def _variable(namespace: Mapping[str, Any], name: str, limit: int, max_side: int) -> Any:
    figure = (
        _figure(namespace.get(name)) if name in namespace and not is_secret_name(name) else None
    )
    if figure is not None:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return _image("image/png", buffer.getvalue(), max_side)
    if name not in namespace or name.startswith("_"):
        raise AttachmentError(
            f"@{name} cannot be attached: the kernel has no variable of that name (run the cell "
            "that makes it, or pick one from Attach)"
        )
    try:
        summary = inspect_variable(namespace, name, limit)
    except ToolError as exc:  # a secret's name: named, never shown
        raise AttachmentError(f"@{name} cannot be attached: {exc}") from None
    return TextContent(text=f"Variable @{name} (from inspect_variable):\n{summary}")


def content_blocks(
    attachments: Any,
    namespace: Mapping[str, Any] | None,
    *,
    limit: int,
    max_side: int,
) -> list[TextContent | ImageContent]:
    """The blocks that follow the message's text; :class:`AttachmentError` on the first bad one."""
    if not attachments:
        return []
    if not isinstance(attachments, list):
        raise AttachmentError("the attachments did not arrive as a list; attach them again")
    blocks: list[TextContent | ImageContent] = []
    for attachment in attachments:
        kind = attachment.get("type") if isinstance(attachment, Mapping) else None
        if kind == "image":
            blocks.append(_pasted_image(attachment, max_side))
        elif kind == "variable":
            if namespace is None:
                raise AttachmentError(
                    "variables can be attached only in a notebook kernel; paste the value instead"
                )
            blocks.append(_variable(namespace, str(attachment.get("name") or ""), limit, max_side))
        else:
            raise AttachmentError(f"an attachment of kind {kind!r} cannot be sent")
    return blocks
