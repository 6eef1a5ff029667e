"""The suite: the typed, validated form of a YAML suite file.

A suite is glmeval's user interface, so loading is built around the mistakes people make.
It collects every problem (not just the first) and reports each as ``file:line: what was
expected``; a problem in a CSV/JSONL/YAML case file names that file and its line. Loading never
touches the network and never lets an exception other than :class:`SuiteError` escape.

Loading runs in three passes over the same data:

1. *entries*: ``cases:`` entries that name files are read and flattened into plain case
   mappings, each remembering its :class:`~glmeval.suite.yamlsrc.Origin` (file and line);
2. *raw checks* on the plain data, independent of the pydantic models, so a wrong request
   parameter or check is reported even when another key has the wrong type;
3. *structure* through the pydantic models, then the checks that need the typed suite
   (matrix fan-out, derived ids, conversations, model limits) and the warnings.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from glmeval.catalogue.models import ModelInfo, chat_models, lookup
from glmeval.checks import CheckRegistry, file_beside, known_types, load_local_checks, suite_registry, validate_check
from glmeval.errors import GlmevalError, SuiteError
from glmeval.records import MODES, CheckSpec
from glmeval.suite.yamlsrc import Origin, Row, load_yaml, read_rows

ROLES = ("system", "user", "assistant", "tool")
COMMON_CHECK_OPTIONS = {"type", "not", "weight", "metric", "threshold"}

# Request parameters of chat.completions.create that a suite may set or use as a grid axis.
REQUEST_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "do_sample",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "user_id",
    "request_id",
    "thinking",
    "meta",
    "sensitive_word_check",
)
GRID_AXES = ("model", "mode", "prompt", *REQUEST_PARAMS)
GRID_RULES = ("include", "exclude")

# Keys of a case; in a case file every other column or key becomes a variable.
CASE_KEYS = (
    "id", "description", "vars", "matrix", "messages", "prompt", "tools", "params", "checks",
    "tags", "skip", "only", "repeat", "threshold", "min-score",
)
# CSV cells are text: these columns are parsed into case fields, every other column is a variable.
CSV_COLUMNS = ("id", "description", "tags", "skip", "only", "checks", "params", "repeat", "threshold", "min-score", "prompt")
_INTERNAL_KEYS = ("path", "content_hash", "check_specs", "warnings")

MAX_VARIANTS = 10_000
MAX_CASES = 100_000
MAX_JOBS = 500_000
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FUNCTIONS = 128


# --------------------------------------------------------------------------------------------
# Request parameters: the API's rules (zhipu-api.md §2) and the SDK's silent clamping.


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _got(value: Any) -> str:
    return f"got {type(value).__name__} {_short(value)}"


Problem = tuple[tuple[Any, ...], str]  # (path inside the value, message)


def _unit_interval(name: str) -> Callable[[Any], list[Problem]]:
    def check(value: Any) -> list[Problem]:
        if not _is_number(value) or not 0 <= value <= 1:
            return [((), f"{name} must be a number from 0 to 1; {_got(value)}")]
        return []

    return check


def _check_max_tokens(value: Any) -> list[Problem]:
    if not _is_int(value) or value < 1:
        return [((), f"max_tokens must be a whole number of at least 1; {_got(value)}")]
    return []


def _check_stop(value: Any) -> list[Problem]:
    if isinstance(value, str):
        return [] if value else [((), "stop must not be an empty string")]
    if isinstance(value, list) and 1 <= len(value) <= 4 and all(isinstance(s, str) and s for s in value):
        return []
    return [((), f"stop must be a string or a list of 1 to 4 non-empty strings; {_got(value)}")]


def _check_bool(name: str) -> Callable[[Any], list[Problem]]:
    def check(value: Any) -> list[Problem]:
        return [] if isinstance(value, bool) else [((), f"{name} must be true or false; {_got(value)}")]

    return check


def _check_seed(value: Any) -> list[Problem]:
    return [] if _is_int(value) else [((), f"seed must be a whole number; {_got(value)}")]


def _check_tool_choice(value: Any) -> list[Problem]:
    return [] if value == "auto" else [((), f"tool_choice supports only \"auto\" (the API's only value); {_got(value)}")]


def _check_enum_object(name: str, key: str, allowed: tuple[str, ...], extra: tuple[str, ...] = ()) -> Callable[[Any], list[Problem]]:
    def check(value: Any) -> list[Problem]:
        shape = f"{{{key}: {' | '.join(allowed)}}}"
        if not isinstance(value, dict):
            return [((), f"{name} must be a mapping {shape}; {_got(value)}")]
        problems: list[Problem] = []
        if value.get(key) not in allowed:
            problems.append(((key,), f"{name}.{key} must be one of {', '.join(allowed)}; {_got(value.get(key))}"))
        for other in value:
            if other != key and other not in extra:
                hint = _did_you_mean(other, (key, *extra))
                problems.append(((other,), f"unknown key {str(other)!r} in {name}{hint}"))
        return problems

    return check


def _check_id_text(name: str, low: int, high: int) -> Callable[[Any], list[Problem]]:
    def check(value: Any) -> list[Problem]:
        if not isinstance(value, str) or not low <= len(value) <= high:
            return [((), f"{name} must be text of {low} to {high} characters; {_got(value)}")]
        return []

    return check


def _check_meta(value: Any) -> list[Problem]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return [((), f"meta must be a mapping of text to text (user_info, bot_info, bot_name, user_name); {_got(value)}")]
    return []


def _check_tools(value: Any) -> list[Problem]:
    """Tools as the API takes them: function, retrieval and web_search entries (zhipu-api §3)."""
    if not isinstance(value, list):
        return [((), f"tools must be a list of tools ({{type: function, function: {{name, description, parameters}}}}); {_got(value)}")]
    problems: list[Problem] = []
    names: dict[str, int] = {}
    functions = 0
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            problems.append(((i,), f"a tool must be a mapping like {{type: function, function: {{name: ...}}}}; {_got(tool)}"))
            continue
        kind = tool.get("type", "function" if "function" in tool else None)
        if kind not in ("function", "retrieval", "web_search"):
            problems.append(((i, "type"), f"tool type must be function, retrieval or web_search; {_got(kind)}"))
            continue
        for key in tool:
            if key not in ("type", kind):
                problems.append(((i, key), f"unknown key {str(key)!r} in a {kind} tool{_did_you_mean(key, ('type', kind))}"))
        body = tool.get(kind)
        if not isinstance(body, dict):
            problems.append(((i,), f"a {kind} tool needs a {kind}: mapping; {_got(body)}"))
            continue
        if kind == "function":
            functions += 1
            name = body.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                problems.append(
                    ((i, "function", "name"), f"function name must be 1-64 characters of a-z, A-Z, 0-9, _ and -; {_got(name)}")
                )
            elif name in names:
                problems.append(((i, "function", "name"), f"function {name!r} is declared twice (first as tool {names[name] + 1})"))
            else:
                names[name] = i
            for key in body:
                if key not in ("name", "description", "parameters", "strict"):
                    hint = _did_you_mean(key, ("name", "description", "parameters"))
                    problems.append(((i, "function", key), f"unknown key {str(key)!r} in a function{hint}"))
            if "description" in body and not isinstance(body["description"], str):
                problems.append(((i, "function", "description"), f"description must be text; {_got(body['description'])}"))
            params = body.get("parameters")
            if params is not None and (not isinstance(params, dict) or params.get("type", "object") != "object"):
                problems.append(
                    ((i, "function", "parameters"), f"parameters must be a JSON Schema object ({{type: object, properties: ...}}); {_got(params)}")
                )
        elif kind == "retrieval" and not isinstance(body.get("knowledge_id"), str):
            problems.append(((i, "retrieval"), "a retrieval tool needs knowledge_id (text)"))
    if functions > MAX_FUNCTIONS:
        problems.append(((), f"the API takes at most {MAX_FUNCTIONS} functions; got {functions}"))
    return problems


@dataclass(frozen=True)
class ParamRule:
    """What a request parameter accepts: a checker for suite values and its JSON Schema."""

    check: Callable[[Any], list[Problem]]
    schema: dict[str, Any]


_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A tool the model may call. Function names: a-z, A-Z, 0-9, _ and -, at most 64 characters.",
    "properties": {
        "type": {"enum": ["function", "retrieval", "web_search"], "default": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": TOOL_NAME.pattern, "description": "Function name."},
                "description": {"type": "string", "description": "What the function does; the model reads it."},
                "parameters": {"type": "object", "description": "JSON Schema of the arguments ({type: object, properties, required})."},
            },
        },
        "retrieval": {"type": "object", "properties": {"knowledge_id": {"type": "string"}, "prompt_template": {"type": "string"}}},
        "web_search": {"type": "object"},
    },
}

PARAM_RULES: dict[str, ParamRule] = {
    "temperature": ParamRule(
        _unit_interval("temperature"),
        {"type": "number", "minimum": 0, "maximum": 1, "description": "Sampling temperature, 0 to 1. The SDK sends 0 as 0.01 with do_sample=false and 1 as 0.99; glmeval warns and records the value sent."},
    ),
    "top_p": ParamRule(
        _unit_interval("top_p"),
        {"type": "number", "minimum": 0, "maximum": 1, "description": "Nucleus sampling, 0 to 1. The SDK sends 0 as 0.01 and 1 as 0.99."},
    ),
    "max_tokens": ParamRule(
        _check_max_tokens,
        {"type": "integer", "minimum": 1, "description": "Most tokens the answer may use; at most the model's maximum output (glm-4: 4095)."},
    ),
    "stop": ParamRule(
        _check_stop,
        {"description": "Stop word, or a list of up to 4 (the API documents one).", "anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 4}]},
    ),
    "do_sample": ParamRule(_check_bool("do_sample"), {"type": "boolean", "description": "false: greedy decoding (temperature and top_p are ignored)."}),
    "seed": ParamRule(_check_seed, {"type": "integer", "description": "Sampling seed (sent by the SDK; server support unconfirmed)."}),
    "tools": ParamRule(_check_tools, {"type": "array", "items": _TOOL_SCHEMA, "maxItems": MAX_FUNCTIONS, "description": "Tools the model may call."}),
    "tool_choice": ParamRule(_check_tool_choice, {"const": "auto", "description": "The API supports only \"auto\"."}),
    "response_format": ParamRule(
        _check_enum_object("response_format", "type", ("text", "json_object")),
        {"type": "object", "properties": {"type": {"enum": ["text", "json_object"]}}, "required": ["type"], "additionalProperties": False, "description": "{type: json_object} asks for a JSON answer."},
    ),
    "user_id": ParamRule(_check_id_text("user_id", 6, 128), {"type": "string", "minLength": 6, "maxLength": 128, "description": "End-user id, 6-128 characters."}),
    "request_id": ParamRule(_check_id_text("request_id", 6, 64), {"type": "string", "minLength": 6, "maxLength": 64, "description": "Client request id, 6-64 characters (normally left to the platform)."}),
    "thinking": ParamRule(
        _check_enum_object("thinking", "type", ("enabled", "disabled"), ("clear_thinking",)),
        {"type": "object", "properties": {"type": {"enum": ["enabled", "disabled"]}, "clear_thinking": {"type": "boolean"}}, "required": ["type"], "description": "Deep thinking on GLM-4.5 and later."},
    ),
    "meta": ParamRule(_check_meta, {"type": "object", "additionalProperties": {"type": "string"}, "description": "CharGLM role-play: user_info, bot_info, bot_name, user_name."}),
    "sensitive_word_check": ParamRule(
        _check_enum_object("sensitive_word_check", "status", ("ENABLE", "DISABLE"), ("type",)),
        {"type": "object", "properties": {"type": {"const": "ALL"}, "status": {"enum": ["ENABLE", "DISABLE"]}}, "description": "Content moderation switch (disabling needs a business permission)."},
    ),
}


def check_param(name: str, value: Any) -> list[Problem]:
    """Problems with one request parameter value, each with the path inside the value."""
    rule = PARAM_RULES.get(name)
    if rule is None:
        return [((), f"unknown request parameter {name!r}{_did_you_mean(name, REQUEST_PARAMS)}")]
    return rule.check(value)


def sdk_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The parameters the ``zhipuai`` SDK actually puts on the wire, and what it changed.

    The SDK silently moves temperature and top_p into the open interval (0, 1) and turns
    sampling off for temperature 0 (zhipu-api.md §2). glmeval records the sent values so the
    store shows what the model really received, and warns so nobody compares 0 with 0.01
    believing they differ.
    """
    sent = dict(params)
    notes: list[str] = []
    t = sent.get("temperature")
    if _is_number(t):
        if t <= 0:
            forced = " (overriding do_sample: true)" if sent.get("do_sample") is True else ""
            sent["temperature"], sent["do_sample"] = 0.01, False
            notes.append(f"temperature {t:g} is sent as 0.01 with do_sample=false{forced}")
        elif t >= 1:
            sent["temperature"] = 0.99
            notes.append(f"temperature {t:g} is sent as 0.99")
    p = sent.get("top_p")
    if _is_number(p):
        if p >= 1:
            sent["top_p"] = 0.99
            notes.append(f"top_p {p:g} is sent as 0.99")
        elif p <= 0:
            sent["top_p"] = 0.01
            notes.append(f"top_p {p:g} is sent as 0.01")
    return sent, notes


CLAMP_REASON = "the zhipuai SDK keeps temperature and top_p inside (0, 1); glmeval records the value sent"


def model_spec(model: str) -> ModelInfo | None:
    """The catalogue's entry for a model (context window, max output), when known."""
    return lookup(model)


def known_models() -> list[str]:
    return chat_models()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Message(_Strict):
    """One message of a conversation."""

    role: Literal["system", "user", "assistant", "tool"] = Field(description="Who speaks: system, user, assistant or tool.")
    content: Any = Field(
        None,
        description="The text (a Jinja2 template), or a list of parts for vision models. "
        "Optional on an assistant message that has tool_calls.",
    )
    tool_calls: list[dict[str, Any]] | None = Field(
        None,
        description="Calls an assistant made: [{id, type: function, function: {name, arguments}}]; "
        "arguments may be a mapping (sent as JSON text).",
    )
    tool_call_id: str | None = Field(None, description="On a tool message: the id of the assistant's tool call it answers.")
    name: str | None = Field(None, description="Optional speaker name.")
    template: bool = Field(True, description="Render content with Jinja2; false sends it verbatim (for text full of {{ }}).")
    _origin: Origin | None = PrivateAttr(None)

    @field_validator("content")
    @classmethod
    def _content(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(p, dict) for p in value):
            return value
        hint = " (put it in quotes)" if isinstance(value, (int, float, bool)) else ""
        raise ValueError(f"content must be text or a list of content parts; {_got(value)}{hint}")

    @field_validator("tool_calls")
    @classmethod
    def _tool_calls(cls, calls: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if calls is None:
            return None
        out = []
        for i, call in enumerate(calls):
            function = call.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise ValueError(f"tool call {i + 1} needs function: {{name, arguments}}")
            if not isinstance(call.get("id"), str) or not call["id"]:
                raise ValueError(f"tool call {i + 1} needs an id (a tool message answers it by tool_call_id)")
            arguments = function.get("arguments", "{}")
            if not isinstance(arguments, str):
                try:
                    arguments = json.dumps(arguments, ensure_ascii=False)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"tool call {i + 1}: arguments cannot be sent as JSON ({exc})") from None
            out.append({**call, "type": call.get("type", "function"), "function": {**function, "arguments": arguments}})
        return out

    @model_validator(mode="after")
    def _role_fields(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id (the id of the assistant's tool call it answers)")
        if self.role != "tool" and self.tool_call_id:
            raise ValueError(f"tool_call_id belongs on a tool message, not on a {self.role} message")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"tool_calls belong on an assistant message, not on a {self.role} message")
        if self.content is None and not self.tool_calls:
            raise ValueError(f"a {self.role} message needs content")
        return self

    def wire(self) -> dict[str, Any]:
        """The message as the API takes it (no glmeval-only keys, no empty fields)."""
        return self.model_dump(exclude_none=True, exclude={"template"})


class ModelLimits(_Strict):
    """Limits for one model (or ``"*"``, every model), as the account's rate card states them."""

    concurrency: int | None = Field(None, ge=1, le=1024, description="Calls to this model in flight at once.")
    rpm: float | None = Field(None, gt=0, description="Requests per minute.")
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (prompt + completion).")


class Settings(_Strict):
    """How glmeval runs the suite; each can be overridden on the command line."""

    concurrency: int = Field(8, ge=1, le=1024, description="Calls in flight at once (run -j/--concurrency).")
    timeout: float = Field(60.0, gt=0, description="Seconds per call attempt (run --timeout).")
    retries: int = Field(4, ge=0, le=20, description="Retries per call on 429, 5xx and network errors (run --retries).")
    poll_timeout: float = Field(300.0, gt=0, description="Seconds to wait for an async task's result (run --poll-timeout).")
    judge_model: str = Field("glm-4", description="Model that grades llm-rubric checks (run --judge-model).")
    embedding_model: str = Field("embedding-3", description="Model for the similar check's embeddings (run --embedding-model).")
    limits: dict[str, ModelLimits] = Field(
        default_factory=dict,
        description="Per-model limits {model or '*': {concurrency, rpm, tpm}} (run --model-concurrency/--rpm/--tpm).",
    )


def _as_tags(value: Any) -> Any:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return value


class Case(_Strict):
    """One test case: variables for the suite's conversation (or its own), and checks."""

    id: str | None = Field(None, description="Unique, stable id (results history is keyed by it). Default: case-N.")
    description: str | None = Field(None, description="What the case tests, shown in reports.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Template variables; override the suite's vars.")
    matrix: Any = Field(
        None,
        description="Fan out: {var: [values...]} runs the case once per combination, or a list of "
        "{var: value} mappings once per entry; each copy gets the id case[var=value].",
    )
    messages: list[Message] | None = Field(None, description="This case's own conversation (replaces the suite's).")
    prompt: str | None = Field(None, description="Run this case only with the named prompt variant.")
    tools: list[dict[str, Any]] | None = Field(None, description="Tools for this case (replace the suite's).")
    params: dict[str, Any] = Field(default_factory=dict, description="Request parameters for this case (grid axes win).")
    checks: list[Any] = Field(default_factory=list, description="Checks for this case, after the suite's.")
    tags: list[str] = Field(default_factory=list, description="Labels (a list, or comma-separated text).")
    skip: Any = Field(False, description="true, or a reason: the case is planned as skipped.")
    only: bool = Field(False, description="When any case has only: true, just those cases run.")
    repeat: int | None = Field(None, ge=1, le=1000, description="Samples per variant (overrides the suite's repeat).")
    threshold: float | None = Field(None, ge=0, le=1, description="Minimum pass rate across repeats (default: every repeat passes).")
    min_score: float | None = Field(
        None, ge=0, le=1, alias="min-score", description="An answer passes when its weighted check score reaches this."
    )
    _index: int = PrivateAttr(0)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if _is_number(value):
            value = str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("id must not be empty")
        return value.strip() if isinstance(value, str) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return _as_tags(value)

    @field_validator("skip")
    @classmethod
    def _skip(cls, value: Any) -> Any:
        if isinstance(value, (bool, str)):
            return value
        raise ValueError(f"skip must be true, false or a reason (text); {_got(value)}")


class Suite(_Strict):
    """A glmeval suite: conversations, a grid of models and parameters, cases and checks."""

    name: str = Field(description="Suite name (default: the file name); results are stored under it.")
    description: str | None = Field(None, description="What the suite is for.")
    mode: Literal["sync", "stream", "async"] = Field("sync", description="Default call mode: sync, stream (SSE) or async (a task glmeval polls).")
    model: str | None = Field(None, description="The model when the grid has no model axis (default glm-4).")
    grid: dict[str, Any] = Field(
        default_factory=dict,
        description="Axes whose product gives the variants: model, mode, prompt and any request parameter, "
        "each a list of values; include/exclude as in GitHub Actions' matrix.",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Request parameters every variant sends.")
    tools: list[dict[str, Any]] | None = Field(None, description="Tools every case offers the model (same as params.tools).")
    repeat: int = Field(1, ge=1, le=1000, description="Samples per case and variant.")
    threshold: float | None = Field(None, ge=0, le=1, description="Default minimum pass rate across repeats.")
    min_score: float | None = Field(None, ge=0, le=1, alias="min-score", description="Default weighted score for an answer to pass.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Template variables for every case.")
    matrix: Any = Field(None, description="Fan every case out over these variables (like a case's matrix).")
    messages: list[Message] | None = Field(None, description="The conversation of every case (Jinja2 in each content).")
    prompts: dict[str, list[Message]] = Field(
        default_factory=dict,
        description="Named prompt variants: a conversation, or text used as the system message. "
        "They form the prompt grid axis (all of them unless grid.prompt lists some).",
    )
    checks: list[Any] = Field(default_factory=list, description="Checks applied to every case.")
    cases: list[Case] = Field(default_factory=list, description="Cases inline, or {file: path} entries, or one case file path.")
    settings: Settings = Field(default_factory=lambda: Settings.model_validate({}), description="Concurrency, timeouts, retries and grading models.")
    prices: dict[str, Any] = Field(
        default_factory=dict, description="Price overrides, yuan per 1M tokens: {model: [input, output]}."
    )
    templating: bool = Field(True, description="false turns Jinja2 off for the whole suite (messages and checks).")
    tags: list[str] = Field(default_factory=list, description="Labels for every case.")
    check_files: list[str] = Field(
        default_factory=list,
        alias="check-files",
        description="Python files (relative to the suite) whose @glmeval.checks.register functions "
        "or CHECKS dict add check types for this suite.",
    )
    # Filled by the loader, not by the user.
    path: SkipJsonSchema[Path | None] = Field(None, exclude=True)
    content_hash: SkipJsonSchema[str] = Field("", exclude=True)
    check_specs: SkipJsonSchema[dict[str, list[CheckSpec]]] = Field(default_factory=dict, exclude=True)
    warnings: SkipJsonSchema[list[str]] = Field(default_factory=list, exclude=True)
    _check_origins: dict[str, list[Origin]] = PrivateAttr(default_factory=dict)
    _system_prompts: set[str] = PrivateAttr(default_factory=set)
    _origin: Origin | None = PrivateAttr(None)
    _checks: CheckRegistry | None = PrivateAttr(None)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return _as_tags(value)

    @property
    def check_registry(self) -> CheckRegistry:
        """The check types this suite sees: its own check files over the built-ins and plugins."""
        if self._checks is None:
            self._checks = suite_registry(self.name)
        return self._checks

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def default_model(self) -> str:
        return self.model or "glm-4"

    def prompt_axis(self) -> list[str]:
        """The prompt variants that run: grid.prompt, else every prompt the suite names."""
        axis = self.grid.get("prompt")
        if axis is None:
            return list(self.prompts)
        return [str(p) for p in (axis if isinstance(axis, list) else [axis])]

    def effective_grid(self) -> dict[str, Any]:
        """The grid with its defaults filled in: a model axis and, with prompts, a prompt axis."""
        grid: dict[str, Any] = {}
        if "model" not in self.grid:
            grid["model"] = [self.default_model]
        grid.update(self.grid)
        if self.prompts and "prompt" not in grid:
            grid["prompt"] = list(self.prompts)
        return grid

    def conversation(self, case: Case, prompt: str | None) -> list[Message] | None:
        """The messages a case sends under a prompt variant, before templating.

        A case's own messages win; else a conversation prompt; else the suite's messages. A
        text prompt is a system message: it replaces the conversation's system message, or is
        put in front of a conversation that has none.
        """
        chosen = self.prompts.get(prompt) if prompt is not None else None
        system = prompt in self._system_prompts
        base: list[Message] | None
        if case.messages is not None:
            base = case.messages
        elif chosen is not None and not system:
            base = chosen
        else:
            base = self.messages
        if system and chosen:
            if base is None:
                return None
            rest = base[1:] if base and base[0].role == "system" else base
            return [chosen[0], *rest]
        return base


# --------------------------------------------------------------------------------------------
# Problems, their places, and pydantic's errors in plain words.


def _did_you_mean(word: Any, options: Iterable[Any]) -> str:
    """A hint naming the option the user most likely meant, or nothing.

    difflib finds the candidates; among them the fewest edits wins, counting a swap of two
    neighbouring letters as one edit, so ``modle`` suggests ``model`` rather than ``mode``.
    """
    text = str(word)
    close = difflib.get_close_matches(text, [str(o) for o in options], n=3, cutoff=0.6)
    if not close:
        return ""
    best = min(close, key=lambda option: (_edits(text, option), abs(len(option) - len(text))))
    return f" (did you mean {best!r}?)"


@functools.lru_cache(maxsize=1024)
def _typo_of(word: str, options: tuple[str, ...]) -> str | None:
    """The option ``word`` is a likely misspelling of (at most two edits away), if any.

    Stricter than :func:`_did_you_mean`: a case-file column that is not reserved is a
    legitimate variable, so only near-misses like ``tgas`` or ``chekcs`` deserve a warning.
    """
    for option in options:
        distance = _edits(word.lower(), option)
        if word != option and distance <= (1 if len(option) <= 4 else 2):
            return option
    return None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


_PLACE = re.compile(r"^(?P<path>.*?):(?P<line>\d+)(?::\d+)?: ")


class Report:
    """Problems and warnings collected while loading, ordered by file and line for printing."""

    def __init__(self, main: Path) -> None:
        self.main = str(main)
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self._warned: set[str] = set()

    def error(self, origin: Origin, text: str, sub: Iterable[Any] = ()) -> None:
        self.problems.append(f"{origin.where(tuple(sub))}: {text}")

    def warn(self, origin: Origin, text: str, key: str | None = None, sub: Iterable[Any] = ()) -> None:
        """Add a warning once per ``key`` (default: the text), so a repeated value warns once."""
        key = key or text
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(f"{origin.where(tuple(sub))}: {text}")

    def sorted(self, items: list[str]) -> list[str]:
        def order(text: str) -> tuple[bool, str, int]:
            match = _PLACE.match(text)
            if not match:
                return (not text.startswith(self.main), text.split(":", 1)[0], 0)
            return (match["path"] != self.main, match["path"], int(match["line"]))

        return sorted(dict.fromkeys(items), key=order)

    def raise_if_any(self) -> None:
        if self.problems:
            raise SuiteError(self.sorted(self.problems))


_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": "one of the listed values",
}


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed in the mapping at ``loc``, for "did you mean" hints."""
    if not loc:
        return _model_fields(Suite)
    if loc[0] == "cases" and len(loc) == 2:
        return _model_fields(Case)
    if loc[0] == "settings":
        return _model_fields(Settings)
    if "messages" in loc or loc[0] == "prompts":
        return _model_fields(Message)
    return []


def _model_fields(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items() if not info.exclude]


def _dotted(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


_PYDANTIC_TAG = re.compile(r"^(\[key\]|[a-z][a-z_-]*\[.*\])$")


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The data path without pydantic's own markers (``[key]``, ``function-after[...]``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and _PYDANTIC_TAG.match(p)))


def _pydantic_problem(err: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
    """One pydantic error as (location, message in plain words)."""
    loc = _clean_loc(tuple(err["loc"]))
    kind = err["type"]
    what = _dotted(loc) or "the suite"
    if kind == "extra_forbidden" and loc:
        key = loc[-1]
        parent = _dotted(loc[:-1]) or "the suite"
        return loc, f"unknown key {str(key)!r} in {parent}{_did_you_mean(key, _allowed_keys(loc[:-1]))}"
    if kind == "missing" and loc:
        parent = _dotted(loc[:-1]) or "the suite"
        return loc, f"{parent}: required key {str(loc[-1])!r} is missing"
    given = err.get("input")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", str(expected))
        return loc, f"{what} must be one of {', '.join(options)}; got {_short(given)}{_did_you_mean(given, options)}"
    if kind in _TYPE_WORDS:
        hint = " (put it in quotes)" if _TYPE_WORDS[kind] == "text" and _is_number(given) else ""
        return loc, f"{what} must be {_TYPE_WORDS[kind]}; {_got(given)}{hint}"
    bounds = err.get("ctx", {})
    words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most", "less_than": "less than"}
    if kind in words:
        limit = next(iter(bounds.values()), "")
        return loc, f"{what} must be {words[kind]} {limit}; got {_short(given)}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return loc, f"{what}: {msg}"


# --------------------------------------------------------------------------------------------
# Checks.


def parse_check(item: Any, where: str, line: int | None, registry: CheckRegistry | None = None) -> CheckSpec:
    """Turn one YAML check entry into a CheckSpec.

    Accepted shapes: ``{type: contains, value: x}``, the shorthand ``{contains: x}``, a
    shorthand with a mapping (``{tool-call: {name: f}}``), a bare name (``- is-json``), and
    ``not-<type>`` for negation. Common options (not, weight, metric, threshold) may sit beside
    either form. ``registry`` is the suite's (its check files over the built-ins).
    """

    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a check must be a mapping like {{contains: text}}; {_got(item)}")
    item = dict(item)
    negate = item.pop("not", False)
    weight = item.pop("weight", 1.0)
    metric = item.pop("metric", None)
    threshold = item.pop("threshold", None)
    if "type" in item:
        ctype = item.pop("type")
        args = item
    else:
        if not item:
            raise ValueError(f"{where}: empty check; write it like {{contains: text}}")
        ctype = next(iter(item))
        value = item.pop(ctype)
        if isinstance(value, dict) and "value" not in value and ctype != "json-field":
            args = {**value, **item}
        else:
            args = {"value": value, **item}
    if not isinstance(ctype, str):
        raise ValueError(f"{where}: check type must be text; {_got(ctype)}")
    types = known_types(registry)
    if ctype not in types and ctype.startswith("not-") and ctype[4:] in types:
        ctype, negate = ctype[4:], not negate
    if ctype not in types:
        raise ValueError(f"{where}: unknown check type {ctype!r}{_did_you_mean(ctype, types)}")
    if not isinstance(negate, bool):
        raise ValueError(f"{where}: not must be true or false; {_got(negate)}")
    if not _is_number(weight) or weight < 0:
        raise ValueError(f"{where}: weight must be a number >= 0; {_got(weight)}")
    if threshold is not None and (not _is_number(threshold) or not 0 <= threshold <= 1):
        raise ValueError(f"{where}: threshold must be a number from 0 to 1; {_got(threshold)}")
    if metric is not None and not isinstance(metric, str):
        raise ValueError(f"{where}: metric must be text (a name for reports); {_got(metric)}")
    bad_keys = [k for k in args if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f"{where}: check arguments must be named by text; got {_short(bad_keys[0])}")
    return CheckSpec(
        type=ctype, args=args, negate=negate, weight=float(weight), metric=metric, threshold=threshold, line=line
    )


# Check arguments that are not Jinja2 templates of the case variables: code, and templates
# that another stage renders with its own variables.
UNTEMPLATED_CHECK_ARGS: dict[str, tuple[str, ...] | None] = {"python": None, "llm-rubric": ("prompt",)}


def templated_check_args(spec: CheckSpec) -> list[str]:
    """Names of a check's arguments whose strings are rendered as templates."""
    skip = UNTEMPLATED_CHECK_ARGS.get(spec.type, ())
    if skip is None:
        return []
    return [k for k in spec.args if k not in skip]


# --------------------------------------------------------------------------------------------
# Loading.


@dataclass
class _RawCase:
    """A case mapping before validation, with where each part of it was written."""

    data: Any
    origin: Origin
    check_origins: list[Origin] = field(default_factory=list)
    key_origins: dict[str, Origin] = field(default_factory=dict)
    file: Path | None = None
    auto_id: str = ""


class _Locator:
    """Maps a location in the validated data (``cases[3].checks[0]``) to a file and line."""

    def __init__(self, root: Origin, cases: list[_RawCase] | None) -> None:
        self.root = root
        self.cases = cases or []

    def origin(self, loc: tuple[Any, ...]) -> Origin:
        if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int) and 0 <= loc[1] < len(self.cases):
            raw = self.cases[loc[1]]
            sub = loc[2:]
            if len(sub) >= 2 and sub[0] == "checks" and isinstance(sub[1], int) and 0 <= sub[1] < len(raw.check_origins):
                return raw.check_origins[sub[1]].at(*sub[2:])
            if sub and sub[0] in raw.key_origins:
                return raw.key_origins[sub[0]].at(*sub[1:])
            return raw.origin.at(*sub)
        return self.root.at(*loc)


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite file, raising SuiteError with every problem found."""
    try:
        return _load(Path(path))
    except GlmevalError:
        raise
    except RecursionError:
        raise SuiteError([f"{path}: the suite is nested too deeply to check"]) from None


def _load(path: Path) -> Suite:
    source = load_yaml(path)
    data = source.data
    root = Origin(path, source)
    if data is None:
        raise SuiteError([f"{path}:1: the suite is empty; expected a mapping with name, messages and cases"])
    if not isinstance(data, dict):
        raise SuiteError(
            [f"{source.where()}: a suite must be a mapping (name:, messages:, cases:); got {type(data).__name__}"]
        )
    report = Report(path)
    data = dict(data)
    for key in _INTERNAL_KEYS:
        if key in data:
            report.error(root, f"unknown key {key!r} in the suite (glmeval fills it in)", (key,))
            data.pop(key)
    if "name" not in data:
        data["name"] = path.name.split(".")[0] or "suite"
    hash_parts: list[bytes] = [source_bytes(path)]
    registry = suite_registry(str(path))
    _load_check_files(data.get("check-files"), root, report, path.parent, hash_parts, registry)
    system_prompts = _text_prompts(data)
    entries = _case_entries(data, root, report, path.parent, hash_parts)
    if entries is not None:
        data["cases"] = [e.data for e in entries]
    locate = _Locator(root, entries)
    _raw_checks(data, entries or [], root, report, registry, path.parent)

    suite: Suite | None = None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        seen: set[tuple[Any, ...]] = set()
        for err in exc.errors():
            loc, text = _pydantic_problem(err)
            if loc in seen:
                continue
            seen.add(loc)
            report.problems.append(f"{locate.origin(loc).where()}: {text}")
    report.raise_if_any()
    assert suite is not None
    suite.path = path
    suite.content_hash = hashlib.sha256(b"\0".join(hash_parts)).hexdigest()[:16]
    suite._system_prompts = system_prompts
    suite._origin = root
    suite._checks = registry
    _attach_origins(suite, entries or [], root)
    _typed_checks(suite, entries or [], root, report)
    report.raise_if_any()
    suite.warnings = report.sorted(report.warnings)
    return suite


def source_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (OSError, ValueError):
        return b""


def _text_prompts(data: dict[Any, Any]) -> set[str]:
    """Turn text prompts into one-message conversations, remembering which they were."""
    prompts = data.get("prompts")
    if not isinstance(prompts, dict):
        return set()
    names = {name for name, value in prompts.items() if isinstance(value, str)}
    if names:
        data["prompts"] = {
            name: ([{"role": "system", "content": value}] if name in names else value) for name, value in prompts.items()
        }
    return {str(n) for n in names}


def _case_entries(
    data: dict[Any, Any], root: Origin, report: Report, base_dir: Path, hash_parts: list[bytes]
) -> list[_RawCase] | None:
    """Flatten ``cases:`` (inline cases, ``{file: ...}`` entries, or one file path) into case mappings."""
    if "cases" not in data:
        return None
    raw = data["cases"]
    where = root.at("cases")
    if isinstance(raw, str):
        items: list[Any] = [{"file": raw}]
        origins = [where]
    elif isinstance(raw, list):
        items = raw
        origins = [where.at(i) for i in range(len(raw))]
    elif raw is None:
        return []
    else:
        report.error(where, f"cases must be a list of cases, or the path of a case file; {_got(raw)}")
        data.pop("cases")
        return None
    out: list[_RawCase] = []
    for i, (item, origin) in enumerate(zip(items, origins)):
        if isinstance(item, dict) and "file" in item:
            out.extend(_file_cases(item, origin, report, base_dir, hash_parts))
            continue
        checks = item.get("checks") if isinstance(item, dict) else None
        check_origins = [origin.at("checks", k) for k in range(len(checks))] if isinstance(checks, list) else []
        out.append(_RawCase(item, origin, check_origins, auto_id=f"case-{i + 1}"))
    return out


def _file_cases(
    entry: dict[Any, Any], origin: Origin, report: Report, base_dir: Path, hash_parts: list[bytes]
) -> list[_RawCase]:
    """The cases of one ``{file: ...}`` entry; its other keys are defaults for every row."""
    name = entry.get("file")
    file_origin = origin.at("file")
    if not isinstance(name, str) or not name.strip():
        report.error(file_origin, f"file must be the path of a case file (.csv, .jsonl, .yaml); {_got(name)}")
        return []
    defaults = {k: v for k, v in entry.items() if k != "file"}
    bad = False
    for key in defaults:
        if key == "id" or key not in CASE_KEYS:
            why = "each case from a file has its own id" if key == "id" else f"not a case key{_did_you_mean(key, CASE_KEYS)}"
            report.error(origin, f"unknown key {str(key)!r} in a case file entry ({why})", (key,))
            bad = True
    path = base_dir / name
    try:
        exists = path.is_file()
    except (OSError, ValueError):
        exists = False
    if not exists:
        report.error(file_origin, f"case file {name!r} not found (looked for {path})")
        return []
    try:
        rows = read_rows(path)
    except SuiteError as exc:
        report.problems.extend(exc.problems)
        return []
    hash_parts.append(source_bytes(path))
    if bad:
        return []
    if not rows:
        report.warn(file_origin, f"case file {name!r} has no cases")
    csv_file = path.suffix.lower() == ".csv"
    out: list[_RawCase] = []
    for n, row in enumerate(rows, start=1):
        case, row_checks = _row_case(row, csv_file, report)
        if case is None:
            continue
        merged: dict[str, Any] = dict(defaults)
        key_origins = {str(k): origin.at(k) for k in defaults}
        for key, value in case.items():
            base = merged.get(key)
            if key == "checks" and isinstance(base, list) and isinstance(value, list):
                merged[key] = [*base, *value]
            elif key == "tags" and isinstance(_as_tags(base), list) and isinstance(_as_tags(value), list):
                merged[key] = [*_as_tags(base), *_as_tags(value)]
            elif key in ("vars", "params") and isinstance(base, dict) and isinstance(value, dict):
                merged[key] = {**base, **value}
            else:
                merged[key] = value
            key_origins.pop(key, None)
        check_origins = [origin.at("checks", k) for k in range(_len(defaults.get("checks")))]
        if isinstance(row_checks, list):
            check_origins += [row.origin.at(*row_checks_loc(row, csv_file), k) for k in range(len(row_checks))]
        out.append(
            _RawCase(merged, row.origin, check_origins, key_origins, path, auto_id=f"{path.stem}-{n}")
        )
    return out


def row_checks_loc(row: Row, csv_file: bool) -> tuple[Any, ...]:
    return () if csv_file else ("checks",)


def _row_case(row: Row, csv_file: bool, report: Report) -> tuple[dict[str, Any] | None, Any]:
    """A case-file row as a case mapping: reserved keys become case keys, the rest variables."""
    reserved = CSV_COLUMNS if csv_file else CASE_KEYS
    case: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    ok = True
    for key, value in row.data.items():
        name = str(key)
        if name in reserved:
            if csv_file:
                try:
                    parsed = _csv_cell(name, value)
                except ValueError as exc:
                    report.error(row.origin, f"column {name!r}: {exc}")
                    ok = False
                    continue
                if parsed is not _EMPTY:
                    case[name] = parsed
            else:
                case[name] = value
        else:
            variables[name] = value
            typo = _typo_of(name, reserved)
            if typo:
                what = "column" if csv_file else "key"
                report.warn(
                    row.origin,
                    f"{what} {name!r} is used as a template variable (did you mean {typo!r}?)",
                    key=f"{row.origin.path}:{name}",
                )
    if variables:
        own = case.get("vars")
        case["vars"] = {**variables, **own} if isinstance(own, dict) else (own if "vars" in case else variables)
    return (case if ok else None), case.get("checks")


_EMPTY = object()
_TRUE = ("true", "yes", "y", "1", "on")
_FALSE = ("false", "no", "n", "0", "off", "")


def _csv_cell(name: str, text: Any) -> Any:
    """A reserved CSV cell as the case field it fills; an empty cell leaves the field unset."""
    text = "" if text is None else str(text)
    stripped = text.strip()
    if not stripped and name != "skip":
        return _EMPTY
    if name in ("id", "description", "prompt"):
        return stripped
    if name == "tags":
        return _as_tags(stripped)
    if name == "skip":
        if stripped.lower() in _TRUE:
            return True
        return False if stripped.lower() in _FALSE else stripped
    if name == "only":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError(f"only must be true or false; got {stripped!r}")
    if name == "repeat":
        try:
            return int(stripped)
        except ValueError:
            raise ValueError(f"repeat must be a whole number; got {stripped!r}") from None
    if name in ("threshold", "min-score"):
        try:
            return float(stripped)
        except ValueError:
            raise ValueError(f"{name} must be a number from 0 to 1; got {stripped!r}") from None
    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid"
        raise ValueError(f"not valid YAML or JSON ({problem})") from None
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        raise ValueError(f"cannot read it ({exc})") from None
    if name == "checks":
        if isinstance(value, (dict, str)):
            return [value]
        if not isinstance(value, list):
            raise ValueError(f"checks must be a YAML/JSON list or mapping of checks; {_got(value)}")
        return value
    if not isinstance(value, dict):
        raise ValueError(f"params must be a YAML/JSON mapping of request parameters; {_got(value)}")
    return value


def _declared_tools(data: Any) -> list[Any] | None:
    """The tools a suite or case mapping declares itself (``tools:`` before ``params.tools``);
    None when it declares none."""
    if not isinstance(data, dict):
        return None
    if data.get("tools") is not None:
        return data["tools"]
    params = data.get("params")
    return params.get("tools") if isinstance(params, dict) else None


def _grid_tools(grid: Any) -> list[list[Any] | None]:
    """Every tools list a grid's ``tools`` axis or include entries may send."""
    if not isinstance(grid, dict):
        return []
    out: list[list[Any] | None] = []
    axis = grid.get("tools")
    if axis is not None:
        # one tools list, or a list of them (each value of the axis is a tools list)
        out += axis if isinstance(axis, list) and axis and all(isinstance(v, list) or v is None for v in axis) else [axis]
    include = grid.get("include")
    if isinstance(include, list):
        out += [entry["tools"] for entry in include if isinstance(entry, dict) and "tools" in entry]
    return out


def _offered_tools(candidates: list[Any]) -> list[Any] | None:
    """Every tool any of the candidate tools lists offers, for the tool-call validator: None when
    none is declared anywhere (nothing to compare with) or one is malformed (reported elsewhere)."""
    declared = [c for c in candidates if c is not None]
    if not declared:
        return None
    if not all(isinstance(c, list) for c in declared):
        return None
    return [tool for tools in declared for tool in tools]


def _raw_checks(
    data: dict[Any, Any], cases: list[_RawCase], root: Origin, report: Report, registry: CheckRegistry, suite_dir: Path | None = None
) -> None:
    """Semantic problems found on the plain data, whatever else is wrong with its structure."""
    prompts = data.get("prompts")
    prompt_names = [str(n) for n in prompts] if isinstance(prompts, dict) else []
    templating = data.get("templating", True) is not False
    _check_params_map(data.get("params"), root.at("params"), report)
    _check_tools_value(data.get("tools"), root.at("tools"), report)
    if isinstance(data.get("params"), dict) and "tools" in data["params"] and data.get("tools") is not None:
        report.error(root, "tools are given twice: as tools: and as params.tools; keep one", ("tools",))
    _check_grid(data.get("grid"), root.at("grid"), report, prompt_names, "prompts" in data)
    _check_matrix(data.get("matrix"), root.at("matrix"), report)
    suite_tools = _declared_tools(data)
    grid_tools = _grid_tools(data.get("grid"))
    case_tools = [next((t for t in (_declared_tools(raw.data), suite_tools) if t is not None), None) for raw in cases]
    # Suite-level checks apply to every case: any tools a case or variant offers will do.
    _check_checks(
        data.get("checks"),
        [root.at("checks", i) for i in range(_len(data.get("checks")))],
        report,
        templating,
        registry,
        suite_dir,
        _offered_tools([suite_tools, *grid_tools, *case_tools]),
    )
    _check_messages(data.get("messages"), root.at("messages"), report, templating)
    if isinstance(prompts, dict):
        for name, messages in prompts.items():
            _check_messages(messages, root.at("prompts", name), report, templating)
    _check_prices(data.get("prices"), root.at("prices"), report)
    ids: dict[str, Origin] = {}
    for raw, tools in zip(cases, case_tools):
        case = raw.data
        if not isinstance(case, dict):
            continue
        _check_params_map(case.get("params"), _key_origin(raw, "params"), report)
        _check_tools_value(case.get("tools"), _key_origin(raw, "tools"), report)
        _check_matrix(case.get("matrix"), _key_origin(raw, "matrix"), report)
        _check_checks(case.get("checks"), raw.check_origins, report, templating, registry, suite_dir, _offered_tools([tools, *grid_tools]))
        _check_messages(case.get("messages"), _key_origin(raw, "messages"), report, templating)
        prompt = case.get("prompt")
        if isinstance(prompt, str) and prompt not in prompt_names:
            where = "prompts:" if prompt_names else "prompts: (the suite defines none)"
            report.error(
                _key_origin(raw, "prompt"),
                f"case {case.get('id', raw.auto_id)!r} names prompt {prompt!r}, which is not under {where}"
                f"{_did_you_mean(prompt, prompt_names)}",
            )
        case_id = case.get("id")
        if isinstance(case_id, (str, int)) and not isinstance(case_id, bool):
            key = str(case_id).strip()
            if key in ids:
                report.error(
                    _key_origin(raw, "id") if raw.file is None else raw.origin,
                    f"duplicate case id {key!r} (first at {ids[key].where()}); ids must be unique",
                )
            else:
                ids[key] = _key_origin(raw, "id") if raw.file is None else raw.origin


def _key_origin(raw: _RawCase, key: str) -> Origin:
    return raw.key_origins.get(key) or raw.origin.at(key)


def _len(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _report_all(report: Report, origin: Origin, problems: list[Problem]) -> None:
    for sub, text in problems:
        report.error(origin, text, sub)


def _clamp_warnings(name: str, value: Any, origin: Origin, report: Report) -> None:
    if name not in ("temperature", "top_p"):
        return
    _, notes = sdk_params({name: value})
    for note in notes:
        report.warn(origin, f"{note}: {CLAMP_REASON}", key=f"clamp:{name}:{value!r}")


def _check_params_map(params: Any, origin: Origin, report: Report) -> None:
    if not isinstance(params, dict):
        if params is not None:
            report.error(origin, f"params must be a mapping of request parameters; {_got(params)}")
        return
    for key, value in params.items():
        if key in ("model", "messages", "stream", "mode"):
            hint = "a grid axis (grid: {model: [...]}) or model:" if key == "model" else (
                "mode: or a grid axis" if key in ("mode", "stream") else "messages: of the suite or case"
            )
            report.error(origin, f"{key!r} is not a request parameter here; use {hint}", (key,))
            continue
        if key not in PARAM_RULES:
            report.error(origin, f"unknown request parameter {str(key)!r}{_did_you_mean(key, REQUEST_PARAMS)}", (key,))
            continue
        _report_all(report, origin.at(key), check_param(key, value))
        _clamp_warnings(key, value, origin.at(key), report)


def _check_tools_value(tools: Any, origin: Origin, report: Report) -> None:
    if tools is not None:
        _report_all(report, origin, _check_tools(tools))


def _check_grid(grid: Any, origin: Origin, report: Report, prompt_names: list[str], has_prompts: bool) -> None:
    """Axis names, every axis value, and include/exclude entries."""
    if not isinstance(grid, dict):
        if grid is not None:
            report.error(origin, f"grid must be a mapping of axes to lists of values; {_got(grid)}")
        return
    axes = [k for k in grid if k not in GRID_RULES]
    for axis in axes:
        values = grid[axis]
        at = origin.at(axis)
        if axis not in GRID_AXES:
            report.error(at, f"unknown grid axis {str(axis)!r}{_did_you_mean(axis, GRID_AXES)}; an axis is model, mode, prompt or a request parameter")
            continue
        if isinstance(values, list) and not values:
            report.error(at, f"grid axis {axis!r} has no values")
            continue
        items = values if isinstance(values, list) else [values]
        for i, value in enumerate(items):
            _check_axis_value(axis, value, at.at(i) if isinstance(values, list) else at, report, prompt_names, has_prompts)
    for rule in GRID_RULES:
        if rule not in grid:
            continue
        entries = grid[rule]
        at = origin.at(rule)
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e for e in entries):
            report.error(at, f"grid.{rule} must be a list of mappings of axis values, like - {{model: glm-4, temperature: 0.5}}")
            continue
        for i, entry in enumerate(entries):
            for key, value in entry.items():
                key_at = at.at(i, key)
                if key not in GRID_AXES:
                    report.error(key_at, f"unknown grid axis {str(key)!r} in grid.{rule}{_did_you_mean(key, GRID_AXES)}")
                elif rule == "exclude" and key not in axes:
                    report.error(key_at, f"grid.exclude names {key!r}, which is not an axis of the grid ({', '.join(map(str, axes)) or 'none'})")
                else:
                    _check_axis_value(key, value, key_at, report, prompt_names, has_prompts)


def _check_axis_value(axis: str, value: Any, at: Origin, report: Report, prompt_names: list[str], has_prompts: bool) -> None:
    if axis == "model":
        if not isinstance(value, str) or not value.strip():
            report.error(at, f"a model must be a model name like glm-4; {_got(value)}")
    elif axis == "mode":
        if value not in MODES:
            report.error(at, f"mode must be one of {', '.join(MODES)}; got {_short(value)}{_did_you_mean(value, MODES)}")
    elif axis == "prompt":
        if not isinstance(value, str) or value not in prompt_names:
            where = "prompts:" if has_prompts else "prompts: (the suite defines none)"
            report.error(at, f"grid prompt {_short(value)} is not defined under {where}{_did_you_mean(value, prompt_names)}")
    else:
        _report_all(report, at, check_param(axis, value))
        _clamp_warnings(axis, value, at, report)


def _check_matrix(matrix: Any, origin: Origin, report: Report) -> None:
    if matrix is None:
        return
    if isinstance(matrix, dict):
        if not matrix:
            report.error(origin, "matrix is empty; give {variable: [values...]}")
        for key, values in matrix.items():
            if not isinstance(key, str):
                report.error(origin, f"matrix variable names must be text; got {_short(key)}")
            elif not isinstance(values, list) or not values:
                report.error(origin.at(key), f"matrix.{key} must be a non-empty list of values; {_got(values)}")
        return
    if isinstance(matrix, list) and matrix and all(isinstance(e, dict) and e for e in matrix):
        for i, entry in enumerate(matrix):
            bad = [k for k in entry if not isinstance(k, str)]
            if bad:
                report.error(origin.at(i), f"matrix variable names must be text; got {_short(bad[0])}")
        return
    report.error(
        origin,
        "matrix must be a mapping {variable: [values...]} (every combination) or a list of "
        f"{{variable: value}} mappings (one case each); {_got(matrix)}",
    )


def _load_check_files(
    files: Any, origin: Origin, report: Report, base: Path, hash_parts: list[bytes], registry: CheckRegistry
) -> None:
    """Import a suite's local check modules into its own registry before its checks are parsed,
    so their names are known check types to this suite alone; their source joins the suite's
    content hash."""
    if files is None:
        return
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list):
        report.error(origin.at("check-files"), f"check-files must be a list of Python file paths; {_got(files)}")
        return
    for i, name in enumerate(files):
        where = origin.at("check-files").at(i)
        if not isinstance(name, str) or not name.endswith(".py"):
            report.error(where, f"check-files entries are paths to .py files; got {_short(name)}")
            continue
        file, found = file_beside(name, base)
        if not found:
            report.error(where, f"check file {name!r} not found (looked for {file})")
            continue
        try:
            load_local_checks(file, registry)
        except Exception as exc:
            report.error(where, f"cannot load check file {name!r}: {type(exc).__name__}: {exc}")
            continue
        hash_parts.append(file.read_bytes())


def _check_checks(
    items: Any,
    origins: list[Origin],
    report: Report,
    templating: bool,
    registry: CheckRegistry,
    suite_dir: Path | None = None,
    tools: list[Any] | None = None,
) -> None:
    """Parse each check and ask its type's validator about its arguments (bad regex, missing
    schema file, a limit that is not a number...), so they stop the load before any call."""
    if not isinstance(items, list):
        return
    for item, origin in zip(items, origins):
        try:
            spec = parse_check(item, origin.where(), origin.line(), registry)
        except ValueError as exc:
            report.problems.append(str(exc))
            continue
        for problem in validate_check(spec, suite_dir if suite_dir is not None else Path.cwd(), tools, registry):
            report.error(origin, f"check {spec.type}: {problem}")
        if templating:
            for key in templated_check_args(spec):
                for text in _strings(spec.args[key]):
                    _check_template(text, origin, report, f"check {spec.type}")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _check_messages(messages: Any, origin: Origin, report: Report, templating: bool) -> None:
    if not isinstance(messages, list):
        return
    if not messages:
        report.error(origin, "the conversation is empty; give at least one message")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            continue
        if not templating or message.get("template") is False:
            continue
        texts = content_templates(message.get("content"))
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            texts += _strings([c.get("function", {}).get("arguments") for c in calls if isinstance(c, dict) and isinstance(c.get("function"), dict)])
        for text in texts:
            _check_template(text, origin.at(i, "content"), report, f"message {i + 1}")


def content_templates(content: Any) -> list[str]:
    """The template texts of a message content: the text, or the text of each text part."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def _check_template(text: str, origin: Origin, report: Report, what: str) -> None:
    from glmeval.plan import TemplateProblem, compile_template

    try:
        compile_template(text)
    except TemplateProblem as exc:
        report.error(origin, f"{what}: {exc}")


def _check_prices(prices_map: Any, origin: Origin, report: Report) -> None:
    if not isinstance(prices_map, dict):
        return
    from glmeval.catalogue.prices import _as_price

    for model, value in prices_map.items():
        try:
            _as_price(value)
        except (ValueError, TypeError) as exc:
            report.error(origin.at(model), f"price of {str(model)!r}: {exc}")


def _attach_origins(suite: Suite, entries: list[_RawCase], root: Origin) -> None:
    """Give every message its place, so a template error can name its line after planning."""
    for i, message in enumerate(suite.messages or []):
        message._origin = root.at("messages", i)
    for name, messages in suite.prompts.items():
        for i, message in enumerate(messages):
            message._origin = root.at("prompts", name) if name in suite._system_prompts else root.at("prompts", name, i)
    locate = _Locator(root, entries)
    for c, case in enumerate(suite.cases):
        for i, message in enumerate(case.messages or []):
            message._origin = locate.origin(("cases", c, "messages", i))


def _matrix_combos(matrix: Any, skip_keys: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The combinations a matrix fans out to; ``[{}]`` for none."""
    skip = set(skip_keys)
    if isinstance(matrix, dict):
        keys = [k for k in matrix if k not in skip]
        return [dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys))] or [{}]
    if isinstance(matrix, list):
        combos = [{k: v for k, v in entry.items() if k not in skip} for entry in matrix]
        unique: list[dict[str, Any]] = []
        for combo in combos:
            if combo not in unique:
                unique.append(combo)
        return unique or [{}]
    return [{}]


def _matrix_size(matrix: Any) -> int:
    if isinstance(matrix, dict):
        size = 1
        for values in matrix.values():
            size *= max(1, len(values)) if isinstance(values, list) else 1
        return size
    return len(matrix) if isinstance(matrix, list) else 1


def show_value(value: Any) -> str:
    """A value as it appears in a derived id or a variant label."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _typed_checks(suite: Suite, entries: list[_RawCase], root: Origin, report: Report) -> None:
    """Fan-out, ids, conversations, check specs, model limits and warnings on the typed suite."""
    locate = _Locator(root, entries)
    specs: dict[str, list[CheckSpec]] = {}
    origins: dict[str, list[Origin]] = {}
    suite_checks = [root.at("checks", i) for i in range(len(suite.checks))]
    specs["*"], origins["*"] = _specs(suite.checks, suite_checks, suite.check_registry, report)
    if not suite.cases:
        report.error(root, "the suite has no cases; add at least one under cases:", ("cases",))
        return

    expanded: list[Case] = []
    case_origin: dict[int, Origin] = {}
    case_checks: dict[int, list[Origin]] = {}
    total = 0
    for i, case in enumerate(suite.cases):
        raw = entries[i] if i < len(entries) else _RawCase(None, root.at("cases", i))
        case._index = i
        if case.id is None:
            case.id = raw.auto_id or f"case-{i + 1}"
        own_keys = set(case.vars) | (set(case.matrix) if isinstance(case.matrix, dict) else set())
        if isinstance(case.matrix, list):
            own_keys |= {k for e in case.matrix for k in e}
        total += _matrix_size(case.matrix) * _matrix_size(suite.matrix)
        if total > MAX_CASES:
            report.error(root, f"the matrices expand to more than {MAX_CASES:,} cases; split the suite", ("matrix",))
            return
        for combo_case in _matrix_combos(case.matrix):
            for combo_suite in _matrix_combos(suite.matrix, own_keys):
                combo = {**combo_case, **combo_suite}
                copy = case
                if combo:
                    label = ",".join(f"{k}={show_value(v)}" for k, v in combo.items())
                    copy = case.model_copy(update={"id": f"{case.id}[{label}]", "vars": {**case.vars, **combo}, "matrix": None})
                elif case.matrix is not None:
                    copy = case.model_copy(update={"matrix": None})
                case_origin[len(expanded)] = locate.origin(("cases", i))
                case_checks[len(expanded)] = raw.check_origins or [locate.origin(("cases", i, "checks", k)) for k in range(len(case.checks))]
                expanded.append(copy)
    suite.cases = expanded

    first: dict[str, Origin] = {}
    for n, case in enumerate(suite.cases):
        origin = case_origin[n]
        assert case.id is not None
        if case.id in first:
            report.error(
                origin,
                f"duplicate case id {case.id!r} (first at {first[case.id].where()}); ids must be unique "
                "(check ids given by matrix fan-out and default ids like case-N)",
            )
            continue
        first[case.id] = origin
        specs[case.id], origins[case.id] = _specs(case.checks, case_checks[n], suite.check_registry, report)
        _check_conversations(suite, case, origin, report)
        if isinstance(case.skip, str) and not case.skip.strip():
            case.skip = False
    suite.check_specs = specs
    suite._check_origins = origins
    _check_model_limits(suite, locate, report)
    _suite_warnings(suite, locate, report)


def _specs(
    items: list[Any], origins: list[Origin], registry: CheckRegistry, report: Report | None = None
) -> tuple[list[CheckSpec], list[Origin]]:
    out: list[CheckSpec] = []
    kept: list[Origin] = []
    for item, origin in zip(items, origins):
        try:
            out.append(parse_check(item, origin.where(), origin.line(), registry))
        except ValueError as exc:
            if report is not None:
                report.problems.append(str(exc))
            continue
        kept.append(origin)
    return out, kept


def _check_conversations(suite: Suite, case: Case, origin: Origin, report: Report) -> None:
    prompts: list[str | None] = [case.prompt] if case.prompt else (list(suite.prompt_axis()) or [None])
    for prompt in prompts:
        messages = suite.conversation(case, prompt)
        label = f"case {case.id!r}" + (f" with prompt {prompt!r}" if prompt else "")
        if not messages:
            report.error(origin, f"{label} has no messages: give it messages:, or give the suite messages: or prompts:")
            return
        if all(m.role in ("system", "assistant") for m in messages):
            report.error(
                origin,
                f"{label}: the conversation has only system/assistant messages; the API needs a user message",
            )
            return
        called: set[str] = set()
        for message in messages:
            for call in message.tool_calls or []:
                called.add(str(call.get("id")))
            if message.role == "tool" and message.tool_call_id not in called:
                where = message._origin or origin
                report.warn(
                    where,
                    f"tool message answers tool_call_id {message.tool_call_id!r}, which no earlier assistant "
                    "message's tool_calls declare",
                    sub=("tool_call_id",),
                )


def _check_model_limits(suite: Suite, locate: _Locator, report: Report) -> None:
    """max_tokens against each model's maximum output, wherever either is stated."""
    grid = suite.effective_grid()
    axis = grid.get("model")
    models = [m for m in (axis if isinstance(axis, list) else [axis]) if isinstance(m, str)]
    include = grid.get("include") or []
    models += [e["model"] for e in include if isinstance(e.get("model"), str)]
    for model in dict.fromkeys(models):
        spec = model_spec(model)
        if spec is None:
            close = _did_you_mean(model, known_models())
            if close and model_spec("glm-4") is not None:
                report.warn(locate.origin(("grid", "model") if "model" in suite.grid else ("model",)),
                            f"model {model!r} is not in glmeval's model table{close}", key=f"model:{model}")
    sources: list[tuple[Any, tuple[Any, ...], list[str]]] = []
    if "max_tokens" in suite.params:
        sources.append((suite.params["max_tokens"], ("params", "max_tokens"), models))
    values = suite.grid.get("max_tokens")
    for i, value in enumerate(values if isinstance(values, list) else [values] if values is not None else []):
        sources.append((value, ("grid", "max_tokens", i) if isinstance(values, list) else ("grid", "max_tokens"), models))
    for i, entry in enumerate(include):
        if "max_tokens" in entry:
            sources.append((entry["max_tokens"], ("grid", "include", i, "max_tokens"), [entry["model"]] if isinstance(entry.get("model"), str) else models))
    for case in suite.cases:
        if "max_tokens" in case.params:
            sources.append((case.params["max_tokens"], ("cases", case._index, "params", "max_tokens"), models))
    for value, loc, which in sources:
        if not _is_int(value):
            continue
        for model in dict.fromkeys(which):
            spec = model_spec(model)
            limit = getattr(spec, "max_output", 0) if spec is not None else 0
            if limit and value > limit:
                report.error(locate.origin(loc), f"max_tokens {value} is more than {model} can write (at most {limit} tokens)")


def _suite_warnings(suite: Suite, locate: _Locator, report: Report) -> None:
    if suite.model is not None and "model" in suite.grid:
        report.warn(locate.origin(("model",)), "model: is ignored because the grid has a model axis")
    if suite.messages is not None and suite.prompts and not (set(suite.prompt_axis()) & suite._system_prompts):
        report.warn(locate.origin(("messages",)), "messages: is unused: every prompt variant is a whole conversation")
    axes = set(suite.grid) - set(GRID_RULES)
    for case in suite.cases:
        shadowed = sorted(axes & set(case.params))
        for key in shadowed:
            report.warn(
                locate.origin(("cases", case._index, "params", key)),
                f"case {case.id!r} sets {key}, which is a grid axis; the grid's value is sent",
                key=f"shadow:{case.id}:{key}",
            )


# --------------------------------------------------------------------------------------------
# JSON Schema for editors.


def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema of the suite format, for editor completion and validation.

    Pydantic describes the structure; the parts glmeval validates by hand (request
    parameters, grid axes, checks, case files, prompts, matrices) get schemas written from the
    same rules, so an editor offers the same names and ranges the loader accepts.
    """
    from glmeval.checks import load_builtin

    schema = Suite.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    params = {name: rule.schema for name, rule in PARAM_RULES.items()}
    defs["RequestParams"] = {
        "type": "object",
        "description": "Request parameters of chat.completions.create (zhipu-api.md §2).",
        "properties": params,
        "additionalProperties": False,
    }
    axis_props: dict[str, Any] = {
        "model": {"description": "Models to compare.", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}], "examples": [known_models()[:6]]},
        "mode": {"description": "Call modes to compare.", "anyOf": [{"enum": list(MODES)}, {"type": "array", "items": {"enum": list(MODES)}, "minItems": 1}]},
        "prompt": {"description": "Prompt variants (names under prompts:).", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
    }
    for name, value_schema in params.items():
        axis_props[name] = {
            "description": f"Values of {name} to compare. {value_schema.get('description', '')}".strip(),
            "anyOf": [value_schema, {"type": "array", "items": value_schema, "minItems": 1}],
        }
    entry = {"type": "object", "properties": {k: {"description": v["description"]} for k, v in axis_props.items()}, "additionalProperties": False, "minProperties": 1}
    defs["Grid"] = {
        "type": "object",
        "description": "Axes whose product gives the variants; include/exclude trim or extend it as in GitHub Actions' matrix.",
        "properties": {
            **axis_props,
            "include": {"type": "array", "items": entry, "description": "Extra variants, or extra keys added to the variants they match."},
            "exclude": {"type": "array", "items": entry, "description": "Variants to drop: every variant matching all the given values."},
        },
        "additionalProperties": False,
    }
    registry = load_builtin()
    types = sorted(registry)
    common = {
        "not": {"type": "boolean", "description": "Invert the check: it passes when the check fails."},
        "weight": {"type": "number", "minimum": 0, "description": "Weight in the answer's score (default 1)."},
        "metric": {"type": "string", "description": "Name the check's score for reports."},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "Pass when the score reaches this."},
    }
    shorthand = {name: {"description": registry[name].doc} for name in types}
    shorthand.update({f"not-{name}": {"description": f"Not: {registry[name].doc}"} for name in types})
    defs["Check"] = {
        "description": "A check: {contains: 北京}, {type: contains, value: 北京}, or a bare name like is-json. "
        "String values are Jinja2 templates of the case variables.",
        "anyOf": [
            {"type": "string", "enum": types},
            {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": types, "description": "The check type."}, "value": {"description": "The check's argument."}, **common},
            },
            {"type": "object", "minProperties": 1, "properties": {**shorthand, **common}},
        ],
    }
    defs["Matrix"] = {
        "description": "Fan out over variables: {var: [values...]} (every combination) or [{var: value}, ...] (one each).",
        "anyOf": [
            {"type": "object", "additionalProperties": {"type": "array", "minItems": 1}},
            {"type": "array", "items": {"type": "object", "minProperties": 1}, "minItems": 1},
        ],
    }
    case_keys = {k: {"description": v.get("description", "")} for k, v in defs["Case"]["properties"].items() if k != "id"}
    defs["CaseFile"] = {
        "type": "object",
        "description": "Cases from a CSV, JSONL or YAML file relative to the suite; columns become variables, "
        "reserved columns (id, description, tags, skip, only, checks, ...) set case fields. Other keys here are defaults for every row.",
        "required": ["file"],
        "properties": {"file": {"type": "string", "description": "Path of the case file, relative to the suite."}, **case_keys},
        "additionalProperties": False,
    }
    checks_array = {"type": "array", "items": {"$ref": "#/$defs/Check"}}
    tools_array = PARAM_RULES["tools"].schema
    case_props = defs["Case"]["properties"]
    case_props["checks"] = {**checks_array, "description": case_props["checks"].get("description", "")}
    case_props["params"] = {"$ref": "#/$defs/RequestParams", "description": case_props["params"].get("description", "")}
    case_props["matrix"] = {"$ref": "#/$defs/Matrix", "description": case_props["matrix"].get("description", "")}
    case_props["tools"] = {**tools_array, "description": case_props["tools"].get("description", "")}
    case_props["tags"] = {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}], "description": case_props["tags"].get("description", "")}
    case_props["skip"] = {"anyOf": [{"type": "boolean"}, {"type": "string"}], "description": case_props["skip"].get("description", "")}
    case_props["id"] = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}], "description": case_props["id"].get("description", "")}
    defs["Message"]["properties"]["content"] = {
        "description": defs["Message"]["properties"]["content"].get("description", ""),
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "null"}],
    }
    props = schema["properties"]
    props["params"] = {"$ref": "#/$defs/RequestParams", "description": props["params"].get("description", "")}
    props["grid"] = {"$ref": "#/$defs/Grid", "description": props["grid"].get("description", "")}
    props["checks"] = {**checks_array, "description": props["checks"].get("description", "")}
    props["matrix"] = {"$ref": "#/$defs/Matrix", "description": props["matrix"].get("description", "")}
    props["tools"] = {**tools_array, "description": props["tools"].get("description", "")}
    props["tags"] = case_props["tags"] | {"description": props["tags"].get("description", "")}
    props["prompts"] = {
        "type": "object",
        "description": props["prompts"].get("description", ""),
        "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/Message"}, "minItems": 1}]},
    }
    props["cases"] = {
        "description": props["cases"].get("description", ""),
        "anyOf": [
            {"type": "string", "description": "Path of a case file (.csv, .jsonl, .yaml)."},
            {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/CaseFile"}, {"$ref": "#/$defs/Case"}]}},
        ],
    }
    props["prices"] = {
        "type": "object",
        "description": props["prices"].get("description", ""),
        "additionalProperties": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, {"type": "object"}]},
    }
    schema["required"] = [r for r in schema.get("required", []) if r != "name"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://glmeval.dev/schema/suite.json",
        **schema,
    }
