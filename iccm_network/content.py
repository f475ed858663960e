"""Rich tool results: ``Image``, ``Audio``, ``File`` and ``ResourceLink`` (pure).

A tool returns one of these, or a list mixing them with ``str`` and JSON-able
values; ``content_blocks`` turns that into MCP content blocks (base64 where
binary) and ``content_block`` turns one value, for prompt messages and the
like. ``content_value`` reads a block back into its typed object (the client
side).

A file named by ``path=`` is read when the object is made, inside the tool
(a sync tool's worker thread), so that a missing file fails the call with a
readable ``ContentError`` rather than later, on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from iccm_network.errors import ToolError
from iccm_network.protocol.versions import ALL_VERSIONS, Features

__all__ = [
    "CONTENT_TYPES",
    "Audio",
    "ContentError",
    "File",
    "Image",
    "ResourceLink",
    "content_annotation",
    "content_block",
    "content_blocks",
    "content_value",
    "is_content_result",
]

_AUDIO_SINCE: Final = ALL_VERSIONS.index("2025-03-26")
_LINK_SINCE: Final = ALL_VERSIONS.index("2025-06-18")

# Enough to name the common formats a tool hands over as bare bytes.
_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
)
_TEXTUAL: Final = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/sql",
        "image/svg+xml",
    }
)


class ContentError(ToolError):
    """A rich result that cannot be sent: a missing file, an unknown or wrong type.

    Raised inside the tool, it reaches the caller as a tool error
    (``isError: true``) with this message.

    Args:
        message: What is wrong, naming the value.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _sniff(data: bytes) -> str | None:
    for signature, mime_type in _SIGNATURES:
        if data.startswith(signature):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return None


def _read(kind: str, path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ContentError(f"{kind}: cannot read {os.fspath(path)!r}: {exc.strerror}") from None


def _checked_mime(kind: str, mime_type: Any) -> str:
    if not isinstance(mime_type, str) or "/" not in mime_type.strip("/"):
        raise ContentError(f"{kind}: {mime_type!r} is not a MIME type such as 'image/png'")
    return mime_type


def is_textual(mime_type: str) -> bool:
    """Whether content of this MIME type is text (sent as ``text``, not ``blob``).

    Args:
        mime_type: A MIME type, parameters allowed.
    """
    base = mime_type.split(";", 1)[0].strip().lower()
    return (
        base.startswith("text/")
        or base in _TEXTUAL
        or base.endswith("+json")
        or base.endswith("+xml")
    )


class _Media:
    """Binary media of one top-level MIME type (``image/`` or ``audio/``)."""

    __slots__ = ("data", "mime_type", "path")
    _kind: str = ""

    def __init__(
        self,
        data: bytes | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        mime_type: str | None = None,
    ) -> None:
        kind = type(self).__name__
        if (data is None) == (path is None):
            raise ContentError(f"{kind}: give either data= or path=, not both or neither")
        if path is not None:
            data = _read(kind, path)
            if mime_type is None:
                mime_type = mimetypes.guess_type(os.fspath(path))[0]
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise ContentError(f"{kind}: data must be bytes, got {type(data).__name__}")
        assert data is not None
        self.data = bytes(data)
        self.path = None if path is None else os.fspath(path)
        if mime_type is None:
            mime_type = _sniff(self.data)
        if mime_type is None:
            where = f"the file name {self.path!r}" if self.path else "the data"
            raise ContentError(f"{kind}: unknown type; {where} names none, pass mime_type=")
        self.mime_type = _checked_mime(kind, mime_type)
        if not self.mime_type.lower().startswith(f"{self._kind}/"):
            raise ContentError(f"{kind}: {self.mime_type!r} is not an {self._kind}/ type")

    def __repr__(self) -> str:
        source = f"path={self.path!r}" if self.path else f"<{len(self.data)} bytes>"
        return f"{type(self).__name__}({source}, mime_type={self.mime_type!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Media)
        return self.data == other.data and self.mime_type == other.mime_type

    def __hash__(self) -> int:
        return hash((type(self), self.data, self.mime_type))

    def block(self) -> dict[str, Any]:
        """The content block (``type``, base64 ``data``, ``mimeType``)."""
        return {
            "type": self._kind,
            "data": base64.b64encode(self.data).decode("ascii"),
            "mimeType": self.mime_type,
        }


class Image(_Media):
    """An image result: bytes or a file, sent base64-encoded.

    The MIME type comes from ``mime_type``, else the file name, else the
    first bytes (PNG, JPEG, GIF, WebP). A missing file or an unknown or
    non-image type raises ``ContentError``, which the caller reads as a tool
    error.

    Args:
        data: The image's bytes.
        path: A file to read instead.
        mime_type: Such as ``"image/png"``.
    """

    __slots__ = ()
    _kind = "image"


class Audio(_Media):
    """An audio result: bytes or a file, sent base64-encoded.

    The MIME type comes from ``mime_type``, else the file name, else the
    first bytes (WAV, MP3 with ID3, Ogg, FLAC).

    Args:
        data: The audio's bytes.
        path: A file to read instead.
        mime_type: Such as ``"audio/wav"``.
    """

    __slots__ = ()
    _kind = "audio"


class File:
    """An embedded resource: a document's text, or base64 bytes.

    Sent as ``text`` when the MIME type is textual (``text/*``, JSON, XML,
    YAML...) and the bytes are UTF-8, else as a base64 ``blob``. The MIME
    type comes from ``mime_type``, else the file name (``path`` or
    ``name``), else ``text/plain`` for ``str`` data and
    ``application/octet-stream`` for bytes.

    Args:
        data: The content, as text or bytes.
        path: A file to read instead.
        mime_type: Such as ``"application/pdf"``.
        uri: The resource's URI; defaults to the file's ``file://`` URI or
            ``file:///<name>``.
        name: A file name for the content; defaults to the path's name.
    """

    __slots__ = ("data", "mime_type", "name", "uri")

    def __init__(
        self,
        data: bytes | str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        mime_type: str | None = None,
        uri: str | None = None,
        name: str | None = None,
    ) -> None:
        if (data is None) == (path is None):
            raise ContentError("File: give either data= or path=, not both or neither")
        if path is not None:
            data = _read("File", path)
            name = name if name is not None else Path(path).name
            if uri is None:
                uri = Path(path).resolve().as_uri()
        elif not isinstance(data, (bytes, bytearray, memoryview, str)):
            raise ContentError(f"File: data must be str or bytes, got {type(data).__name__}")
        assert data is not None
        self.data: bytes | str = data if isinstance(data, str) else bytes(data)
        self.name = name or "file"
        if mime_type is None and name:
            mime_type = mimetypes.guess_type(name)[0]
        if mime_type is None:
            mime_type = "text/plain" if isinstance(data, str) else "application/octet-stream"
        self.mime_type = _checked_mime("File", mime_type)
        self.uri = uri if uri is not None else f"file:///{self.name}"
        if not isinstance(self.uri, str) or ":" not in self.uri:
            raise ContentError(f"File: uri {self.uri!r} is not a URI")

    def __repr__(self) -> str:
        return f"File(uri={self.uri!r}, mime_type={self.mime_type!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, File):
            return NotImplemented
        return (self.data, self.mime_type, self.uri) == (other.data, other.mime_type, other.uri)

    def __hash__(self) -> int:
        return hash((self.data, self.mime_type, self.uri))

    @property
    def text(self) -> str | None:
        """The content as text when it is textual, else ``None``."""
        if isinstance(self.data, str):
            return self.data
        if not is_textual(self.mime_type):
            return None
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def contents(self) -> dict[str, Any]:
        """The ``ResourceContents`` object: ``uri``, ``mimeType``, ``text`` or ``blob``."""
        contents: dict[str, Any] = {"uri": self.uri, "mimeType": self.mime_type}
        text = self.text
        if text is not None:
            contents["text"] = text
        else:
            raw = self.data.encode("utf-8") if isinstance(self.data, str) else self.data
            contents["blob"] = base64.b64encode(raw).decode("ascii")
        return contents

    def block(self) -> dict[str, Any]:
        """The embedded-resource content block."""
        return {"type": "resource", "resource": self.contents()}


class ResourceLink:
    """A link to a resource the client may read or fetch (``resource_link``).

    Under revisions before 2025-06-18, which have no links, it is sent as a
    text block naming the URI.

    Args:
        uri: The resource's URI.
        name: Its name.
        title: A human-readable title.
        description: What it holds.
        mime_type: Its MIME type, when known.
        size: Its size in bytes, when known.
    """

    __slots__ = ("description", "mime_type", "name", "size", "title", "uri")

    def __init__(
        self,
        uri: str,
        name: str,
        *,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        size: int | None = None,
    ) -> None:
        if not isinstance(uri, str) or ":" not in uri:
            raise ContentError(f"ResourceLink: uri {uri!r} is not a URI")
        if not isinstance(name, str) or not name:
            raise ContentError("ResourceLink: name must be a non-empty string")
        self.uri = uri
        self.name = name
        self.title = title
        self.description = description
        self.mime_type = None if mime_type is None else _checked_mime("ResourceLink", mime_type)
        self.size = size

    def __repr__(self) -> str:
        return f"ResourceLink({self.uri!r}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceLink):
            return NotImplemented
        return self.block() == other.block()

    def __hash__(self) -> int:
        return hash((self.uri, self.name))

    def block(self) -> dict[str, Any]:
        """The ``resource_link`` content block."""
        block: dict[str, Any] = {"type": "resource_link", "uri": self.uri, "name": self.name}
        for key, value in (
            ("title", self.title),
            ("description", self.description),
            ("mimeType", self.mime_type),
            ("size", self.size),
        ):
            if value is not None:
                block[key] = value
        return block


CONTENT_TYPES: Final = (Image, Audio, File, ResourceLink)
"""The rich result types, for ``isinstance`` checks."""


def content_block(value: Any, features: Features | None = None) -> dict[str, Any]:
    """The MCP content block for one value: a ``str`` or a content object.

    Prompt messages and tool results share it. A ``str`` is a text block.
    Under revisions that lack a block type, the nearest one is used: audio
    becomes an embedded resource before 2025-03-26, a link becomes text
    before 2025-06-18.

    Args:
        value: A ``str``, ``Image``, ``Audio``, ``File`` or ``ResourceLink``.
        features: The revision to write for; ``None`` means the latest.

    Raises:
        TypeError: ``value`` is none of those.
    """
    if isinstance(value, str):
        return {"type": "text", "text": value}
    index = len(ALL_VERSIONS) if features is None else ALL_VERSIONS.index(features.version)
    if isinstance(value, Audio) and index < _AUDIO_SINCE:
        encoded = base64.b64encode(value.data).decode("ascii")
        contents = {"uri": "file:///audio", "mimeType": value.mime_type, "blob": encoded}
        return {"type": "resource", "resource": contents}
    if isinstance(value, ResourceLink) and index < _LINK_SINCE:
        return {"type": "text", "text": f"{value.name}: {value.uri}"}
    if isinstance(value, CONTENT_TYPES):
        return value.block()
    raise TypeError(
        f"{type(value).__name__} is not content (str, Image, Audio, File, ResourceLink)"
    )


def is_content_result(value: Any) -> bool:
    """Whether a tool's return value is (or lists) rich content.

    Args:
        value: What the tool returned.
    """
    if isinstance(value, CONTENT_TYPES):
        return True
    return type(value) is list and any(isinstance(item, CONTENT_TYPES) for item in value)


def content_blocks(
    value: Any, features: Features | None, as_text: Callable[[Any], str]
) -> list[dict[str, Any]]:
    """The content blocks for a tool's rich result: one value or a list of them.

    Args:
        value: A content object, or a list mixing them with ``str`` and
            other values.
        features: The revision to write for; ``None`` means the latest.
        as_text: Writes any other value as text (the server: compact JSON).
    """
    items = value if type(value) is list else [value]
    return [
        content_block(item, features)
        if isinstance(item, (str, *CONTENT_TYPES))
        else {"type": "text", "text": as_text(item)}
        for item in items
    ]


def _mentions_content(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, CONTENT_TYPES):
        return True
    return any(_mentions_content(arg) for arg in typing.get_args(annotation))


def _is_content_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, CONTENT_TYPES)


def _arms(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return typing.get_args(tp)
    return (tp,)


def _flat(tp: Any) -> bool:
    """A content type, or a union whose arms are content types or hold none."""
    return all(_is_content_type(arm) or not _mentions_content(arm) for arm in _arms(tp))


def content_annotation(annotation: Any) -> bool:
    """Whether a return annotation promises rich content, checked at registration.

    A content type alone, in a union, or as the item type of a ``list`` is
    content (no ``outputSchema``); nested anywhere else (``dict[str, Image]``,
    ``list[list[Image]]``) it could never be sent, and is refused.

    Args:
        annotation: A return annotation, awaitables removed.

    Raises:
        TypeError: A content type sits where it cannot be sent.
    """
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if not _mentions_content(annotation):
        return False
    for arm in _arms(annotation):
        if typing.get_origin(arm) is list:
            (item,) = typing.get_args(arm)
            if _flat(item):
                continue
        elif _is_content_type(arm) or not _mentions_content(arm):
            continue
        raise TypeError(_NESTED.format(annotation=annotation))
    return True


_NESTED = (
    "{annotation!r}: Image, Audio, File and ResourceLink can be returned alone, "
    "in a union or in a list, not inside other types"
)


def content_value(block: Mapping[str, Any]) -> Any:
    """The typed object for one received content block (the client side).

    ``text`` gives its ``str``; ``image``, ``audio``, ``resource`` and
    ``resource_link`` give ``Image``, ``Audio``, ``File`` and
    ``ResourceLink``; an unknown block type is returned as the dict itself.

    Args:
        block: A content block from a result.
    """
    kind = block.get("type")
    try:
        if kind == "text":
            return str(block["text"])
        if kind in ("image", "audio"):
            data = base64.b64decode(block["data"], validate=True)
            cls = Image if kind == "image" else Audio
            return cls(data, mime_type=block["mimeType"])
        if kind == "resource":
            resource = block["resource"]
            mime_type = resource.get("mimeType")
            if "text" in resource:
                payload: bytes | str = str(resource["text"])
            else:
                payload = base64.b64decode(resource["blob"], validate=True)
            uri = str(resource["uri"])
            name = uri.rstrip("/").rsplit("/", 1)[-1] or None
            return File(payload, mime_type=mime_type, uri=uri, name=name)
        if kind == "resource_link":
            return ResourceLink(
                block["uri"],
                block["name"],
                title=block.get("title"),
                description=block.get("description"),
                mime_type=block.get("mimeType"),
                size=block.get("size"),
            )
    except (KeyError, TypeError, ValueError, binascii.Error, ContentError):
        pass  # a malformed block is handed over as it came
    return dict(block)
