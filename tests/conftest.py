"""Shared test set-up: nothing may touch the network at test time."""

from __future__ import annotations

import socket
import urllib.request

import pooch
import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that tries to open a network connection or download."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted in a unit test")

    real_connect = socket.socket.connect

    def connect(sock, address):
        # local IPC (Jupyter kernels, xdist) stays allowed; anything else is refused
        if sock.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in ("127.0.0.1", "localhost", "::1")):
            return real_connect(sock, address)
        refuse()

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", refuse)
