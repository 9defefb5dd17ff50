"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a cluster's pre-emption).

While :func:`stop_signals` is active the signals only record a request; the
training loop asks :meth:`StopRequest.agreed` after every step, saves
``last.pt`` at the step reached and raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

__all__ = ["StopRequest", "TrainingInterrupted", "stop_signals"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT (Ctrl-C) or SIGTERM (e.g. a cluster's
    pre-emption) after ``step`` optimiser steps, with ``checkpoint`` saved there;
    ``train(cfg, resume=True)`` continues bit-for-bit. A ``KeyboardInterrupt``,
    so that it ends a program that does not handle it, like Ctrl-C does."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signum, self.step, self.checkpoint = signum, step, Path(checkpoint)
        super().__init__(f"training stopped by {signal.Signals(signum).name} at step {step}; saved {checkpoint}")


class StopRequest:
    """The first stop signal received, if any (set by the handlers of :func:`stop_signals`)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def agreed(self, distributed: bool) -> bool:
        """Whether to stop now: this process got a signal, or (under DDP) any process did."""
        if not distributed:
            return self.signum is not None
        import torch.distributed as dist

        flag = torch.tensor([-1 if self.signum is None else self.signum], dtype=torch.int64)
        if dist.get_backend() == "nccl":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if self.signum is None and int(flag) >= 0:
            self.signum = int(flag)
        return self.signum is not None


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """While the block runs, SIGINT and SIGTERM only record a stop request (the loop
    then checkpoints at the step it reached and stops); the previous handlers are
    restored afterwards. Outside the main thread, where Python cannot set signal
    handlers, nothing changes."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request.signum is None:
            request.signum = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


