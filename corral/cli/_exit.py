"""The way out of a ``corral`` process that has loaded Temporal's Rust bridge.

The bridge's Tokio threads outlive Python's event loops, and one that drops a Python
object while the interpreter tears itself down aborts the process ("Fatal Python error:
PyGILState_Release ... finalizing", SIGABRT; temporalio/sdk-python#300, open). A command
that used Temporal therefore leaves with ``os._exit`` once its own exit handlers have
run, before the teardown that races with those threads.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import NoReturn

BRIDGE = "temporalio.bridge.temporal_sdk_bridge"


class Exit:
    """The process's exit status, and its way out (see the module's docstring).

    Registered with ``atexit`` before any command runs, it is the last exit handler to
    run: the handlers registered later (an OpenTelemetry provider's flush, say) run first.
    """

    def __init__(self) -> None:
        self.code = 1  # an unexpected exception's status, until the command says otherwise
        atexit.register(self.leave)

    def now(self, code: int) -> NoReturn:
        """Exit with ``code``."""
        self.code = code
        sys.exit(code)

    def leave(self) -> None:
        """Skip the interpreter's teardown if Temporal's bridge was loaded."""
        if BRIDGE not in sys.modules:
            return
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(self.code)
