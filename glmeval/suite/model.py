"""The pydantic models of the suite format: Suite, Case, Message, Settings.

They describe the structure (which keys, which types) and give the JSON Schema its shape. What
depends on more than one key, or on files beside the suite, is checked by the loader: parts
it validates by hand (check entries, matrices) are typed here as what the loader guarantees
and skipped by pydantic, so one mistake reads as one sentence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SkipValidation, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from glmeval.checks import CheckRegistry, suite_registry
from glmeval.checks.args import got
from glmeval.records import CheckSpec
from glmeval.suite.problems import is_number
from glmeval.suite.providers import ProviderEntry, ProviderInfo, provider_table
from glmeval.suite.yamlsrc import Origin

__all__ = [
    "ROLES",
    "Case",
    "CheckItem",
    "Matrix",
    "Message",
    "ModelLimits",
    "Settings",
    "Suite",
    "allowed_keys",
    "as_tags",
]

ROLES = ("system", "user", "assistant", "tool")

CheckItem = Annotated[str | dict[str, Any], SkipValidation]
"""A check entry as written (``- is-json``, ``{contains: x}``); the loader parses each one."""

Matrix = dict[str, Annotated[list[Any], Field(min_length=1)]] | Annotated[list[Annotated[dict[str, Any], Field(min_length=1)]], Field(min_length=1)]
"""A fan-out: ``{var: [values...]}`` (every combination) or ``[{var: value}, ...]`` (one each).
The loader checks it (its messages say what a matrix is); pydantic only types it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Message(_Strict):
    """One message of a conversation."""

    role: Literal["system", "user", "assistant", "tool"] = Field(description="Who speaks: system, user, assistant or tool.")
    content: str | list[Any] | None = Field(
        None,
        description="The text (a Jinja2 template), or a list of parts for vision models: text, "
        "{image: file beside the suite}, {image_url: URL}. Optional on an assistant message that has tool_calls.",
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

    @field_validator("content", mode="plain")
    @classmethod
    def _content(cls, value: Any) -> str | list[Any] | None:
        # The loader checks each part with its own line (glmeval.suite.content).
        if value is None or isinstance(value, (str, list)):
            return value
        hint = " (put it in quotes)" if isinstance(value, (int, float, bool)) else ""
        raise ValueError(f"content must be text or a list of content parts; {got(value)}{hint}")

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
    retries: int | None = Field(
        None, ge=0, le=20, description="At most this many retries per call (run --retries; default: retry_budget decides)."
    )
    retry_budget: float | None = Field(
        None, gt=0, description="Seconds per job to keep retrying 429, 5xx and network errors (run --retry-budget; default 600)."
    )
    poll_timeout: float = Field(300.0, gt=0, description="Seconds to wait for an async task's result (run --poll-timeout).")
    judge_model: str = Field("glm-4", description="Model that grades llm-rubric checks (run --judge-model).")
    embedding_model: str = Field("embedding-3", description="Model for the similar check's embeddings (run --embedding-model).")
    limits: dict[str, ModelLimits] = Field(
        default_factory=dict,
        description="Per-model limits {model or '*': {concurrency, rpm, tpm}} (run --model-concurrency/--rpm/--tpm).",
    )


def as_tags(value: Any) -> Any:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return value


class Case(_Strict):
    """One test case: variables for the suite's conversation (or its own), and checks."""

    id: str | None = Field(None, description="Unique, stable id (results history is keyed by it). Default: case-N.")
    description: str | None = Field(None, description="What the case tests, shown in reports.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Template variables; override the suite's vars.")
    matrix: Annotated[Matrix | None, SkipValidation] = Field(
        None,
        description="Fan out: {var: [values...]} runs the case once per combination, or a list of "
        "{var: value} mappings once per entry; each copy gets the id case[var=value].",
    )
    messages: list[Message] | None = Field(None, description="This case's own conversation (replaces the suite's).")
    prompt: str | None = Field(None, description="Run this case only with the named prompt variant.")
    tools: list[dict[str, Any]] | None = Field(None, description="Tools for this case (replace the suite's).")
    params: dict[str, Any] = Field(default_factory=dict, description="Request parameters for this case (grid axes win).")
    checks: list[CheckItem] = Field(default_factory=list, description="Checks for this case, after the suite's.")
    tags: list[str] = Field(default_factory=list, description="Labels (a list, or comma-separated text).")
    skip: bool | str = Field(False, description="true, or a reason: the case is planned as skipped.")
    only: bool = Field(False, description="When any case has only: true, just those cases run.")
    repeat: int | None = Field(None, ge=1, le=1000, description="Samples per variant (overrides the suite's repeat).")
    threshold: float | None = Field(None, ge=0, le=1, description="Minimum pass rate across repeats (default: every repeat passes).")
    min_score: float | None = Field(
        None, ge=0, le=1, alias="min-score", description="An answer passes when its weighted check score reaches this."
    )

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if type(value) is str and value and not value[0].isspace() and not value[-1].isspace():  # nothing to strip
            return value
        if is_number(value):
            value = str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("id must not be empty")
        return value.strip() if isinstance(value, str) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return as_tags(value)

    @field_validator("skip", mode="plain")
    @classmethod
    def _skip(cls, value: Any) -> bool | str:
        if isinstance(value, (bool, str)):
            return value
        raise ValueError(f"skip must be true, false or a reason (text); {got(value)}")


class Suite(_Strict):
    """A glmeval suite: conversations, a grid of models and parameters, cases and checks."""

    name: str = Field(description="Suite name (default: the file name); results are stored under it.")
    description: str | None = Field(None, description="What the suite is for.")
    mode: Literal["sync", "stream", "async", "batch"] = Field("sync", description="Default call mode: sync, stream (SSE), async (a task glmeval polls) or batch (the Batch API, half price).")
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
    matrix: Annotated[Matrix | None, SkipValidation] = Field(
        None, description="Fan every case out over these variables (like a case's matrix)."
    )
    messages: list[Message] | None = Field(None, description="The conversation of every case (Jinja2 in each content).")
    prompts: dict[str, list[Message]] = Field(
        default_factory=dict,
        description="Named prompt variants: a conversation, or text used as the system message. "
        "They form the prompt grid axis (all of them unless grid.prompt lists some).",
    )
    checks: list[CheckItem] = Field(default_factory=list, description="Checks applied to every case.")
    cases: list[Case] = Field(default_factory=list, description="Cases inline, or {file: path} entries, or one case file path.")
    settings: Settings = Field(default_factory=lambda: Settings.model_validate({}), description="Concurrency, timeouts, retries and grading models.")
    prices: dict[str, Any] = Field(
        default_factory=dict, description="Price overrides, yuan per 1M tokens: {model: [input, output]}."
    )
    providers: dict[str, ProviderEntry] = Field(
        default_factory=dict,
        description="Who serves the models: {name: {sdk, base_url, api_key_env, dialect, models, prices}}; "
        "built in: zhipu (zhipuai SDK, ZHIPUAI_API_KEY, the default) and zai (zai-sdk, ZAI_API_KEY). "
        "The provider grid axis (or run --provider) picks among them.",
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
    # The cases: entry each case came from (matrix copies share one), for the lines of its keys.
    # Kept here, not on each Case: a private attribute costs every one of 100,000 cases.
    _case_entries: list[int] = PrivateAttr(default_factory=list)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return as_tags(value)

    @property
    def check_registry(self) -> CheckRegistry:
        """The check types this suite sees: its own check files over the built-ins and plugins."""
        if self._checks is None:
            self._checks = suite_registry(self.name)
        return self._checks

    def cases_with_entries(self) -> list[tuple[Case, int]]:
        """Each case with the index of the ``cases:`` entry it came from (matrix copies share
        their entry's), so a problem in its keys names that entry's line."""
        entries = self._case_entries if len(self._case_entries) == len(self.cases) else range(len(self.cases))
        return list(zip(self.cases, entries))

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def default_model(self) -> str:
        return self.model or "glm-4"

    @property
    def provider_table(self) -> dict[str, ProviderInfo]:
        """Every provider this suite can use: the built-ins under its own ``providers:``."""
        return provider_table(self.providers)

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


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed in the mapping at ``loc``, for "did you mean" hints."""
    if not loc:
        return _model_fields(Suite)
    if loc[0] == "cases" and len(loc) == 2:
        return _model_fields(Case)
    if loc[0] == "settings":
        return _model_fields(Settings)
    if loc[0] == "providers" and len(loc) == 2:
        return _model_fields(ProviderEntry)
    if "messages" in loc or loc[0] == "prompts":
        return _model_fields(Message)
    return []


def _model_fields(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items() if not info.exclude]
