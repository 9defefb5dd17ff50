"""Shared test set-up: nothing may touch the network at test time."""

from __future__ import annotations

import socket
import sys
import urllib.request

import pooch
import pytest
import torch


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


@pytest.fixture(autouse=True)
def close_figures():
    """Close the figures a test opened (pyplot keeps every figure until closed, and warns past 20)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


#: every device this machine has: the CPU always, CUDA and Apple's MPS when present
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
    ["mps"] if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each available device in turn (tests that take it run once per device)."""
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    """Each floating dtype of the differentiable path in turn."""
    return request.param
