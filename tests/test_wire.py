"""Packing large base64 MIME data into Jupyter messages (kernel_bridge/_wire.py)."""

from __future__ import annotations

import base64
import os

import pytest
from jupyter_client.session import json_packer

from kernel_bridge._wire import Base64Text, base64_text, splicing_packer

IMAGE = base64.b64encode(b"\x89PNG" + os.urandom(300_000))


def test_checked_base64_becomes_base64_text() -> None:
    text = base64_text(IMAGE)
    assert type(text) is Base64Text
    assert text == IMAGE.decode("ascii")


@pytest.mark.parametrize(
    "raw", [b'ab"cd', b"ab\\cd", b"ab\ncd", b"ab\x00cd", "é☃".encode(), b"ab cd", b"\xff\xfe"]
)
def test_anything_else_stays_plain_text(raw: bytes) -> None:
    text = base64_text(raw)
    assert type(text) is str
    assert text == raw.decode("utf-8", "replace")


def test_packed_bytes_are_exactly_jupyter_clients() -> None:
    pack = splicing_packer(json_packer)
    image = base64_text(IMAGE)
    small = base64_text(b"QUJD")
    contents = [
        {
            "data": {"image/png": image, "text/plain": "<Png é ☃ \x1b[31m>"},
            "metadata": {"kernel_bridge": {"executor": "local"}, "image/png": {"width": 3}},
            "transient": {"display_id": "d1"},
        },
        {"data": {"image/png": image, "image/jpeg": small, "text/plain": "x"}, "metadata": {}},
        {"data": {"text/plain": "no images"}, "metadata": {}},
        {"execution_state": "idle"},
    ]
    for content in contents:
        assert pack(content) == json_packer(content)
    # the caller's content is left as it was
    assert contents[0]["data"]["image/png"] is image


def test_content_holding_a_marker_falls_back_to_the_plain_packer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = base64_text(IMAGE)
    # the text comes first: splicing at the first marker would put the image there
    content = {"data": {"text/plain": "ffffffffffffffff-0", "image/png": image}}
    monkeypatch.setattr("kernel_bridge._wire.os.urandom", lambda n: b"\xff" * n)
    assert splicing_packer(json_packer)(content) == json_packer(content)
