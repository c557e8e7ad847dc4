"""reasonmed-async: the application around the agents — configuration, the SQLite
checkpoint store, LLM clients, loaders, exports, the daemon and the CLI.

The vLLM backend is imported only when a config names it.
"""

from .config import AppConfig, ConfigError, load_config, parse_config
from .export import export
from .input_errors import InputError
from .loaders import load_questions
from .pipeline import Pipeline, RunConflict
from .store import CheckpointStore, StoreError

__all__ = [
    "AppConfig", "CheckpointStore", "ConfigError", "InputError", "Pipeline", "RunConflict", "StoreError",
    "export", "load_config", "load_questions", "parse_config",
]
