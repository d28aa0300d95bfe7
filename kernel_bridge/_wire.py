"""Large base64 MIME data on its way to Jupyter, encoded as JSON once (in fact never).

An image display is one base64 string of a megabyte or more. The runtime sends such a
string as a raw line after its message (docs/runtime-protocol.md), the channel checks it
and keeps it as :class:`Base64Text`, and the kernel's Jupyter session packs it with
:func:`splicing_packer`, which copies the text into the JSON bytes instead of running
the JSON encoder over it. The bytes on the wire are exactly those of jupyter_client's
packer: the JSON encoding of a base64 string is the string between quotes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["Base64Text", "base64_text", "splicing_packer"]

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


class Base64Text(str):
    """A str checked to hold only base64 characters, so its JSON form is ``"`` + it + ``"``.

    Made by :func:`base64_text` (the runtime channel, for a display's image data).
    """

    __slots__ = ()


def base64_text(raw: bytes) -> str:
    """``raw`` as text: a :class:`Base64Text` when it is base64 characters only.

    Checked here, at the moment of use: the runtime lives with the code, which may
    write anything to its channel. Anything else comes back as a plain (decoded) str.
    """
    if raw.translate(None, _BASE64_ALPHABET):
        return raw.decode("utf-8", "replace")
    return Base64Text(raw.decode("ascii"))


def splicing_packer(inner: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """Wrap a JSON packer (jupyter_client's ``json``/``orjson``) for contents with images.

    Installed on the kernel's Session by :class:`kernel_bridge.kernelapp.BridgeKernelApp`.
    A content whose ``data`` bundle holds :class:`Base64Text` values is packed with short
    markers in their place and the texts copied in afterwards; the result is the same
    bytes ``inner`` makes, without its JSON encoder passing over megabytes.
    """

    def pack(obj: Any) -> bytes:
        data = obj.get("data") if type(obj) is dict else None
        if type(data) is not dict:
            return inner(obj)
        texts = {k: v for k, v in data.items() if type(v) is Base64Text}
        if not texts:
            return inner(obj)
        token = os.urandom(8).hex()
        marked = dict(data)
        marks: list[tuple[bytes, Base64Text]] = []
        for index, (key, text) in enumerate(texts.items()):
            name = f"{token}-{index}"
            marked[key] = name
            marks.append((f'"{name}"'.encode("ascii"), text))
        packed = inner({**obj, "data": marked})
        if any(packed.count(quoted) != 1 for quoted, _text in marks):
            return inner(obj)  # the content held a marker too (never by chance)
        pieces: list[bytes] = []
        for quoted, text in marks:
            head, _found, packed = packed.partition(quoted)
            pieces += [head, b'"', text.encode("ascii"), b'"']
        pieces.append(packed)
        return b"".join(pieces)

    return pack
