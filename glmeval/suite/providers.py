"""Providers: who serves the models, as a suite names them (``providers:``, the ``provider`` axis).

A provider is a host reached through one SDK: ``sdk: zhipuai | zai | openai``, its
``base_url``, the environment variable holding its key (``api_key_env``; the key itself is
never written in a suite), its thinking ``dialect``, its spelling of model names (``models:``)
and its prices. Two are built in: ``zhipu`` (the zhipuai SDK and ZHIPUAI_API_KEY: the default,
and every job's provider when the suite names none) and ``zai`` (zai-sdk's ZaiClient,
ZAI_API_KEY, api.z.ai). A suite's entry of the same name overrides the fields it sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glmeval.catalogue.dialects import Dialect
from glmeval.catalogue.models import chat_models, lookup
from glmeval.catalogue.prices import _as_price
from glmeval.checks.args import got, short
from glmeval.hints import did_you_mean
from glmeval.suite.problems import Problems
from glmeval.suite.yamlsrc import Origin

__all__ = [
    "BUILTIN",
    "DEFAULT_PROVIDER",
    "SDKS",
    "ProviderEntry",
    "ProviderInfo",
    "Sdk",
    "check_providers",
    "merge_providers",
    "provider_table",
]

Sdk = Literal["zhipuai", "zai", "openai"]
SDKS: tuple[Sdk, ...] = ("zhipuai", "zai", "openai")
DEFAULT_PROVIDER = "zhipu"
ZAI_BASE_URL = "https://api.z.ai/api/paas/v4"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProviderEntry(BaseModel):
    """One entry of ``providers:`` as written (a built-in's entry needs only what it changes)."""

    model_config = ConfigDict(extra="forbid")

    sdk: Sdk | None = Field(None, description="The SDK that speaks to it: zhipuai, zai (zai-sdk) or openai (any OpenAI-compatible host).")
    base_url: str | None = Field(None, description="Its API base URL, e.g. http://gpu-box:8000/v1 (required with sdk openai).")
    api_key_env: str | None = Field(None, description="The environment variable holding its key (never the key itself).")
    dialect: Dialect | None = Field(
        None, description="How it spells thinking: zhipu (default), vllm, sglang, dashscope or openrouter."
    )
    models: dict[str, str] = Field(
        default_factory=dict, description="Model names as this host spells them: {glm-4.7: z-ai/glm-4.7}."
    )
    prices: dict[str, Any] = Field(
        default_factory=dict, description="Its prices, yuan per 1M tokens: {model: [input, output]} (over the suite's)."
    )


@dataclass(frozen=True)
class ProviderInfo:
    """A provider with every field decided (built-in defaults under the suite's entry)."""

    name: str
    sdk: Sdk
    base_url: str | None
    api_key_env: str
    dialect: Dialect = "zhipu"
    models: dict[str, str] = field(default_factory=dict)
    prices: dict[str, Any] = field(default_factory=dict)

    def host_model(self, model: str) -> str:
        return self.models.get(model, model)

    def cache_identity(self, model: str) -> dict[str, Any] | None:
        """What about this provider decides an answer beyond the request: ``None`` for the
        zhipu provider sending what the built-in sends (its cache keys stay what they always
        were; prices change nothing sent), else its name, SDK, base URL, dialect and the model
        name it is sent."""
        base = BUILTIN[DEFAULT_PROVIDER]
        sent = (self.sdk, self.base_url, self.dialect, self.host_model(model))
        if self.name == DEFAULT_PROVIDER and sent == (base.sdk, base.base_url, base.dialect, model):
            return None
        return {"name": self.name, "sdk": self.sdk, "base_url": self.base_url, "dialect": self.dialect, "model": sent[3]}


BUILTIN: dict[str, ProviderInfo] = {
    "zhipu": ProviderInfo("zhipu", "zhipuai", None, "ZHIPUAI_API_KEY"),
    "zai": ProviderInfo("zai", "zai", ZAI_BASE_URL, "ZAI_API_KEY"),
}
_DEFAULT_KEY_ENV: dict[Sdk, str] = {"zhipuai": "ZHIPUAI_API_KEY", "zai": "ZAI_API_KEY"}


def provider_table(entries: dict[str, ProviderEntry]) -> dict[str, ProviderInfo]:
    """Every provider a suite can use: the built-ins, then its own entries over them.
    (The loader has checked the entries: an entry without a base built-in names its sdk.)"""
    table = dict(BUILTIN)
    for name, entry in entries.items():
        base = BUILTIN.get(name)
        sdk = entry.sdk or (base.sdk if base else "openai")
        same_sdk = base is not None and base.sdk == sdk
        table[name] = ProviderInfo(
            name=name,
            sdk=sdk,
            base_url=(entry.base_url.rstrip("/") if entry.base_url else (base.base_url if same_sdk and base else None)),
            api_key_env=entry.api_key_env or (base.api_key_env if base else _DEFAULT_KEY_ENV.get(sdk, "")),
            dialect=entry.dialect or (base.dialect if base else "zhipu"),
            models=dict(entry.models),
            prices=dict(entry.prices),
        )
    return table


def merge_providers(tables: Iterable[tuple[str, dict[str, ProviderInfo]]], used: set[str]) -> dict[str, ProviderInfo]:
    """One table for several suites run together (one client per provider): a provider that
    two suites define differently is one line naming both, since one name gets one client."""
    from glmeval.errors import GlmevalError

    merged: dict[str, ProviderInfo] = {}
    source: dict[str, str] = {}
    for where, table in tables:
        for name, info in table.items():
            if name not in used:
                continue
            known = merged.get(name)
            if known is not None and (known.sdk, known.base_url, known.api_key_env, known.dialect) != (
                info.sdk, info.base_url, info.api_key_env, info.dialect
            ):
                raise GlmevalError(f"provider {name!r} is defined differently in {source[name]} and {where}; run them apart or give one name each")
            merged.setdefault(name, info)
            source.setdefault(name, where)
    return merged


def _raw_models(data: dict[Any, Any]) -> list[str]:
    """The models a suite names (model:, the model axis, include entries), from the plain data."""
    raw = data.get("grid")
    grid: dict[Any, Any] = raw if isinstance(raw, dict) else {}
    axis = grid.get("model", data.get("model"))
    found = [m for m in (axis if isinstance(axis, list) else [axis]) if isinstance(m, str)]
    found += [e["model"] for e in grid.get("include") or [] if isinstance(e, dict) and isinstance(e.get("model"), str)]
    return found


def check_providers(data: dict[Any, Any], root: Origin, problems: Problems) -> None:
    """What the pydantic types cannot see: names usable in a URL, an sdk for every new
    provider, a base URL for sdk openai, a variable name (not a key) in api_key_env, model
    names glmeval knows in ``models:`` and ``prices:``, and every provider the grid names
    defined. Types and closed sets (sdk, dialect) are pydantic's, with their own lines."""
    entries = data.get("providers")
    names = list(BUILTIN)
    if isinstance(entries, dict):
        models = [*dict.fromkeys([*_raw_models(data), *chat_models()])]
        for name, entry in entries.items():
            at = root.at("providers", name)
            if not isinstance(name, str) or not _NAME.match(name):
                problems.error(root.at("providers"), f"provider name {short(name)} must be letters, digits, '.', '_' or '-' (it names a URL path)")
                continue
            names.append(name)
            if isinstance(entry, dict):
                _check_entry(name, entry, at, problems, models)
    grid = data.get("grid")
    if not isinstance(grid, dict):
        return
    values = grid.get("provider")
    items = values if isinstance(values, list) else [values] if values is not None else []
    for i, value in enumerate(items):
        where = root.at("grid", "provider", i) if isinstance(values, list) else root.at("grid", "provider")
        _check_name(value, where, problems, names)
    for rule in ("include", "exclude"):
        entries_ = grid.get(rule)
        for i, entry in enumerate(entries_ if isinstance(entries_, list) else []):
            if isinstance(entry, dict) and "provider" in entry:
                _check_name(entry["provider"], root.at("grid", rule, i, "provider"), problems, names)


def _check_name(value: Any, at: Origin, problems: Problems, names: list[str]) -> None:
    if isinstance(value, str) and value in names:
        return
    if not isinstance(value, str) or not value.strip():
        problems.error(at, f"a provider must be a provider name like zhipu; {got(value)}")
        return
    problems.error(at, f"unknown provider {value!r}{did_you_mean(value, names)}; define it under providers: (built in: {', '.join(BUILTIN)})")


def _check_entry(name: str, entry: dict[Any, Any], at: Origin, problems: Problems, models: list[str]) -> None:
    base = BUILTIN.get(name)
    sdk = entry.get("sdk")
    if sdk is None and base is None:
        problems.error(at, f"provider {name!r} needs sdk: one of {', '.join(SDKS)}")
    effective = sdk if sdk in SDKS else (base.sdk if base is not None and sdk is None else None)
    url = entry.get("base_url")
    if isinstance(url, str) and not re.match(r"^https?://[^/\s]+", url):
        problems.error(at.at("base_url"), f"base_url of provider {name!r} must be an http:// or https:// URL; got {short(url)}")
    if effective == "openai" and not entry.get("base_url"):
        problems.error(at, f"provider {name!r} uses sdk openai and needs a base_url (its OpenAI-compatible endpoint, e.g. http://gpu-box:8000/v1)")
    env = entry.get("api_key_env")
    if isinstance(env, str):
        if not _ENV.match(env):
            # Never echo it: a value that is no variable name may well be the key itself.
            problems.error(at.at("api_key_env"), f"api_key_env of provider {name!r} must name an environment variable (like VLLM_API_KEY), not hold the key")
    elif env is None and effective == "openai" and base is None:
        problems.error(at, f"provider {name!r} needs api_key_env: the environment variable holding its key (for a server that takes none, name one set to any value)")
    for key in ("models", "prices"):
        mapping = entry.get(key)
        if not isinstance(mapping, dict):
            continue
        for model, value in mapping.items():
            where = at.at(key, model)
            if not isinstance(model, str) or (model not in models and lookup(model) is None):
                problems.error(where, f"{key} of provider {name!r} names model {short(model)}, which the suite does not use and glmeval does not know{did_you_mean(model, models)}")
                continue
            if key == "models" and isinstance(value, str) and not value.strip():
                problems.error(where, f"the name provider {name!r} uses for {model} is empty; write it like z-ai/{model}")
            elif key == "prices":
                try:
                    _as_price(value)
                except (TypeError, ValueError) as exc:
                    problems.error(where, f"price of {model!r} at provider {name!r}: {exc}")
