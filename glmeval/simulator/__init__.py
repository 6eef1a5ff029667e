"""The local GLM server: the Zhipu v4 chat protocol, deterministic canned replies, faults.

It exists so suites can run without an API key and CI can test offline through the real
``zhipuai`` SDK. Everything it answers is simulated (each response carries the header
``X-Glmeval-Simulator: 1``).
"""

from __future__ import annotations

from .batches import BatchConfig
from .faults import FaultConfig
from .models import MODELS, ModelSpec
from .rules import Rule, RulesError, load_rules
from .server import API_PREFIX, DEFAULT_API_KEY, LocalServer, Stats, serve_forever

__all__ = [
    "API_PREFIX",
    "BatchConfig",
    "DEFAULT_API_KEY",
    "FaultConfig",
    "LocalServer",
    "MODELS",
    "ModelSpec",
    "Rule",
    "RulesError",
    "Stats",
    "load_rules",
    "serve_forever",
]
