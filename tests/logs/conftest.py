"""Shared by the logging tests: whatever logging setup a test installs is put back after it."""

from __future__ import annotations

import logging

import pytest
import structlog

from reasonmed_async.logs import setup
from reasonmed_async.logs.setup import CHATTY_LOGGERS


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    chatty = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    gate, call_logger = setup._per_call_level, setup._call_logger
    structlog.contextvars.clear_contextvars()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    for name, lvl in chatty.items():
        logging.getLogger(name).setLevel(lvl)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()
    setup._per_call_level, setup._call_logger = gate, call_logger
