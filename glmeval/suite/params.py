"""Request parameters: the API's rules (zhipu-api.md §2) and the SDK's silent clamping.

Each parameter is declared once, as a pydantic type: it validates a suite's value
(:func:`check_param`) and gives the JSON Schema that ``glmeval schema`` prints
(:func:`params_json_schema`). Pydantic's own error texts are not shown: each parameter maps a
failure to its own sentence, which says what the API takes in the suite's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    with_config,
)
from pydantic_core import ErrorDetails
from typing_extensions import NotRequired, TypedDict

from glmeval.catalogue.models import REASONING_EFFORT_VALUES
from glmeval.checks.args import got
from glmeval.hints import did_you_mean
from glmeval.records import Thinking as ThinkingState
from glmeval.suite.problems import PathProblem, is_number
from glmeval.suite.websearch import WEB_SEARCH_KEYS, WebSearch, web_search_typos

__all__ = [
    "CLAMP_REASON",
    "MAX_FUNCTIONS",
    "PARAMS",
    "REQUEST_PARAMS",
    "THINKING_WORDS",
    "TOOL_NAME",
    "WEB_SEARCH_KEYS",
    "Param",
    "ReasoningEffort",
    "ThinkingWord",
    "check_param",
    "check_tools",
    "params_json_schema",
    "sdk_params",
    "thinking_state",
    "thinking_wire",
    "wire_params",
]

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FUNCTIONS = 128
_STRICT = ConfigDict(strict=True)
# python-re keeps the loader's reading of TOOL_NAME (``$`` before a final newline).
_OBJECT = ConfigDict(strict=True, extra="forbid", regex_engine="python-re")


# --------------------------------------------------------------------------------------------
# Objects the API takes.


@with_config(_OBJECT)
class ResponseFormat(TypedDict):
    """{type: json_object} asks for a JSON answer."""

    type: Literal["text", "json_object"]


@with_config(_OBJECT)
class Thinking(TypedDict):
    """Thinking as the API takes it (zhipu-api-2026 §2.1)."""

    type: Literal["enabled", "disabled"]
    clear_thinking: NotRequired[
        Annotated[bool, Field(description="false keeps the reasoning of earlier assistant turns in context (preserved thinking).")]
    ]


ThinkingWord = Literal["on", "off", "auto", "enabled", "disabled"]
"""The readable values of ``thinking`` (YAML's bare on/off arrive as true/false)."""
THINKING_WORDS: dict[str, ThinkingState] = {"on": "on", "off": "off", "auto": "auto", "enabled": "on", "disabled": "off"}
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


def thinking_state(value: Any) -> ThinkingState | None:
    """The state a valid ``thinking`` value asks for: on, off or auto (None for anything else)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        kind = value.get("type")
        return "on" if kind == "enabled" else "off" if kind == "disabled" else None
    return THINKING_WORDS.get(value) if isinstance(value, str) else None


def thinking_wire(value: Any) -> dict[str, Any] | None:
    """What the API gets for a ``thinking`` value: ``{type: enabled|disabled}`` (with
    clear_thinking when given), or None for auto, where the model decides and nothing is sent."""
    state = thinking_state(value)
    if state is None or state == "auto":
        return None
    wire: dict[str, Any] = {"type": "enabled" if state == "on" else "disabled"}
    if isinstance(value, dict) and "clear_thinking" in value:
        wire["clear_thinking"] = value["clear_thinking"]
    return wire


def wire_params(params: dict[str, Any]) -> dict[str, Any]:
    """Request parameters in the API's words: a readable ``thinking`` becomes the mapping the
    API takes, and ``thinking: auto`` is left out. Values that are not valid pass unchanged
    (the loader has reported them)."""
    if "thinking" not in params or thinking_state(params["thinking"]) is None:
        return params
    wire = thinking_wire(params["thinking"])
    return {k: (wire if k == "thinking" else v) for k, v in params.items() if k != "thinking" or wire is not None}


@with_config(_OBJECT)
class SensitiveWordCheck(TypedDict):
    """Content moderation switch (disabling needs a business permission)."""

    # The loader has never checked its value; the schema states what the API takes.
    type: NotRequired[Annotated[Any, WithJsonSchema({"const": "ALL"})]]
    status: Literal["ENABLE", "DISABLE"]


def _object_schema(value: dict[Any, Any] | None) -> dict[Any, Any] | None:
    if value is not None and value.get("type", "object") != "object":
        raise ValueError("not an object schema")
    return value


@with_config(_OBJECT)
class Function(TypedDict):
    """A function the model may call."""

    name: Annotated[str, Field(pattern=TOOL_NAME.pattern, description="Function name.")]
    description: NotRequired[Annotated[str, Field(description="What the function does; the model reads it.")]]
    parameters: NotRequired[
        Annotated[
            dict[Any, Any] | None,
            AfterValidator(_object_schema),
            WithJsonSchema({"type": "object", "description": "JSON Schema of the arguments ({type: object, properties, required})."}),
        ]
    ]
    strict: NotRequired[Any]


@with_config(_OBJECT)
class FunctionTool(TypedDict):
    """A function tool; ``type`` may be left out when ``function`` is given."""

    type: NotRequired[Literal["function"]]
    function: Function


@with_config(ConfigDict(strict=True, extra="allow"))
class Retrieval(TypedDict):
    """A knowledge base the model may search."""

    knowledge_id: str
    prompt_template: NotRequired[Annotated[Any, WithJsonSchema({"type": "string"})]]


@with_config(_OBJECT)
class RetrievalTool(TypedDict):
    """A retrieval tool: the platform searches a knowledge base."""

    type: Literal["retrieval"]
    retrieval: Retrieval


@with_config(_OBJECT)
class WebSearchTool(TypedDict):
    """The platform's web search (zhipu-api-2026 §3); the answer comes with a ``web_search`` list."""

    type: Literal["web_search"]
    web_search: WebSearch


def _written_kind(tool: dict[Any, Any]) -> Any:
    """The tool's type as written; a mapping with ``function:`` and no type is a function tool."""
    return tool.get("type", "function" if "function" in tool else None)


def _tool_kind(tool: Any) -> str | None:
    kind = _written_kind(tool) if isinstance(tool, dict) else None
    return kind if isinstance(kind, str) else None


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[RetrievalTool, Tag("retrieval")] | Annotated[WebSearchTool, Tag("web_search")],
    Discriminator(_tool_kind),
    Field(description="A tool the model may call. Function names: a-z, A-Z, 0-9, _ and -, at most 64 characters."),
]

# --------------------------------------------------------------------------------------------
# The parameters.

Explain = Callable[[Any, Sequence[ErrorDetails]], list[PathProblem]]


@dataclass(frozen=True)
class Param:
    """One request parameter: its pydantic type, and ``explain``, which turns the type's errors
    for a value (none when it fits) into the parameter's own problem sentences."""

    name: str
    adapter: TypeAdapter[Any]
    explain: Explain

    def check(self, value: Any) -> list[PathProblem]:
        """Problems with one value, each with the path inside the value."""
        try:
            self.adapter.validate_python(value)
        except ValidationError as exc:
            return self.explain(value, exc.errors())
        return self.explain(value, [])


def _says(text: str) -> Explain:
    """One sentence for any failure; ``{got}`` is what the suite gave."""
    return lambda value, errors: [((), text.format(got=got(value)))] if errors else []


def _explain_stop(value: Any, errors: Sequence[ErrorDetails]) -> list[PathProblem]:
    if not errors:
        return []
    if isinstance(value, str) and not value:
        return [((), "stop must not be an empty string")]
    return [((), f"stop must be a string or a list of 1 to 4 non-empty strings; {got(value)}")]


def _explain_object(name: str, model: type[Any], key: str) -> Explain:
    """Problems of a ``{key: one of ...}`` object: a wrong value, and each unknown key."""
    hints = tuple(get_type_hints(model))
    allowed: tuple[str, ...] = get_args(get_type_hints(model)[key])
    shape = f"{{{key}: {' | '.join(allowed)}}}"

    def explain(value: Any, errors: Sequence[ErrorDetails]) -> list[PathProblem]:
        out: list[PathProblem] = []
        for err in errors:
            loc = err["loc"]
            if not loc:
                return [((), f"{name} must be a mapping {shape}; {got(value)}")]
            if loc[0] == key:
                out.append(((key,), f"{name}.{key} must be one of {', '.join(allowed)}; {got(value.get(key))}"))
            else:
                other = _error_key(err)
                out.append(((other,), f"unknown key {str(other)!r} in {name}{did_you_mean(other, hints)}"))
        return out

    return explain


def _explain_choice(name: str, allowed: tuple[str, ...]) -> Explain:
    def explain(value: Any, errors: Sequence[ErrorDetails]) -> list[PathProblem]:
        if not errors:
            return []
        return [((), f"{name} must be one of {', '.join(allowed)}; {got(value)}{did_you_mean(value, allowed)}")]

    return explain


_THINKING_SHAPE = "thinking must be on, off or auto (or enabled, disabled, {{type: enabled|disabled, clear_thinking: true|false}}); {got}"
_THINKING_OBJECT = TypeAdapter(Thinking)
_explain_thinking_object = _explain_object("thinking", Thinking, "type")


def _explain_thinking(value: Any, errors: Sequence[ErrorDetails]) -> list[PathProblem]:
    """The readable values in one sentence; the API's mapping key by key."""
    if not errors:
        return []
    if isinstance(value, dict):
        try:
            _THINKING_OBJECT.validate_python(value)
        except ValidationError as exc:
            out: list[PathProblem] = []
            for err in exc.errors():
                if err["loc"][:1] == ("clear_thinking",):
                    out.append((("clear_thinking",), f"thinking.clear_thinking must be true or false; {got(value['clear_thinking'])}"))
                else:
                    out += _explain_thinking_object(value, [err])
            return out
        return []
    hint = ""
    if isinstance(value, str):
        hint = f" (did you mean {value.lower()!r}?)" if value.lower() in THINKING_WORDS else did_you_mean(value, THINKING_WORDS)
    return [((), _THINKING_SHAPE.format(got=got(value)) + hint)]


def _error_key(err: ErrorDetails) -> Any:
    """The unknown key an error is about, as written (pydantic names a non-text key by its text)."""
    return err["input"] if err["type"] == "invalid_key" else err["loc"][-1]


_TOOLS_SHAPE = "tools must be a list of tools ({{type: function, function: {{name, description, parameters}}}}); {got}"
_FUNCTION_HINTS = ("name", "description", "parameters")  # strict is accepted but never suggested
# The order the problems of one tool are listed in, whatever order pydantic finds them.
_TOOL_KEYS, _BODY, _NAME, _FUNCTION_KEYS, _DESCRIPTION, _PARAMETERS = range(6)


def _explain_tools(tools: Any, errors: Sequence[ErrorDetails]) -> list[PathProblem]:
    """Tools as the API takes them: function, retrieval and web_search entries (zhipu-api §3)."""
    ranked: list[tuple[int, int, PathProblem]] = []
    for err in errors:
        loc = err["loc"]
        if not loc:
            return [((), _TOOLS_SHAPE.format(got=got(tools)))]
        i = int(loc[0])
        tool = tools[i]
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            problem: PathProblem
            if not isinstance(tool, dict):
                problem = ((i,), f"a tool must be a mapping like {{type: function, function: {{name: ...}}}}; {got(tool)}")
            else:
                problem = ((i, "type"), f"tool type must be function, retrieval or web_search; {got(_written_kind(tool))}")
            ranked.append((i, _TOOL_KEYS, problem))
            continue
        kind = str(loc[1])
        rest = loc[2:]
        if len(rest) == 1 and rest[0] != kind:
            key = _error_key(err)
            hint = did_you_mean(key, ("type", kind))
            ranked.append((i, _TOOL_KEYS, ((i, key), f"unknown key {str(key)!r} in a {kind} tool{hint}")))
        elif len(rest) == 1:
            ranked.append((i, _BODY, ((i,), f"a {kind} tool needs a {kind}: mapping; {got(tool.get(kind))}")))
        elif kind == "retrieval":
            ranked.append((i, _NAME, ((i, "retrieval"), "a retrieval tool needs knowledge_id (text)")))
        elif kind == "web_search":
            if err["type"] == "invalid_key":
                key = err["input"]
                problem = ((i, "web_search", key), f"web_search keys must be text; {got(key)}")
            else:
                key = rest[1]
                problem = ((i, "web_search", key), f"web_search.{key} {_value_error(err)}")
            ranked.append((i, _NAME, problem))
        elif kind == "function":
            ranked.append((i, *_function_problem(i, tool["function"], err, rest[1])))
    bad_names = {problem[0][0] for _, _, problem in ranked if problem[0][1:] == ("function", "name")}
    duplicates, functions = _duplicate_functions(tools, bad_names)
    ranked += duplicates
    ranked += [(i, _TOOL_KEYS, problem) for i, problem in web_search_typos(tools)]
    ranked.sort(key=lambda item: item[:2])
    found = list(dict.fromkeys(problem for _, _, problem in ranked))
    if functions > MAX_FUNCTIONS:
        found.append(((), f"the API takes at most {MAX_FUNCTIONS} functions; got {functions}"))
    return found


def _function_problem(i: int, body: dict[Any, Any], err: ErrorDetails, part: Any) -> tuple[int, PathProblem]:
    """The problem of tool ``i``'s function body that ``err`` (about ``part`` of it) stands for."""
    at = (i, "function", part)
    if part == "name":
        return _NAME, (at, f"function name must be 1-64 characters of a-z, A-Z, 0-9, _ and -; {got(body.get('name'))}")
    if part == "description":
        return _DESCRIPTION, (at, f"description must be text; {got(body['description'])}")
    if part == "parameters":
        return _PARAMETERS, (at, f"parameters must be a JSON Schema object ({{type: object, properties: ...}}); {got(body['parameters'])}")
    key = _error_key(err)
    return _FUNCTION_KEYS, ((i, "function", key), f"unknown key {str(key)!r} in a function{did_you_mean(key, _FUNCTION_HINTS)}")


def _value_error(err: ErrorDetails) -> str:
    """The sentence a validator raised (pydantic prefixes it with "Value error, ")."""
    return str(err["msg"]).removeprefix("Value error, ")


def _duplicate_functions(tools: list[Any], bad_names: set[int]) -> tuple[list[tuple[int, int, PathProblem]], int]:
    """What no single tool shows: functions declared twice (among well-formed names), and how
    many functions there are."""
    names: dict[str, int] = {}
    out: list[tuple[int, int, PathProblem]] = []
    functions = 0
    for i, tool in enumerate(tools):
        if _tool_kind(tool) != "function" or not isinstance(tool.get("function"), dict):
            continue
        functions += 1
        name = tool["function"].get("name")
        if i in bad_names or not isinstance(name, str):
            continue
        if name in names:
            out.append((i, _NAME, ((i, "function", "name"), f"function {name!r} is declared twice (first as tool {names[name] + 1})")))
        else:
            names[name] = i
    return out, functions


def _param(name: str, kind: Any, explain: Explain) -> Param:
    config = None if isinstance(kind, type) else _STRICT
    return Param(name, TypeAdapter(kind, config=config), explain)


_UNIT = "{name} must be a number from 0 to 1; {{got}}"
_ID_TEXT = "{name} must be text of {low} to {high} characters; {{got}}"

PARAMS: dict[str, Param] = {
    p.name: p
    for p in [
        _param(
            "temperature",
            Annotated[float, Field(ge=0, le=1, description="Sampling temperature, 0 to 1. The SDK sends 0 as 0.01 with do_sample=false and 1 as 0.99; glmeval warns and records the value sent.")],
            _says(_UNIT.format(name="temperature")),
        ),
        _param(
            "top_p",
            Annotated[float, Field(ge=0, le=1, description="Nucleus sampling, 0 to 1. The SDK sends 0 as 0.01 and 1 as 0.99.")],
            _says(_UNIT.format(name="top_p")),
        ),
        _param(
            "max_tokens",
            Annotated[int, Field(ge=1, description="Most tokens the answer may use; at most the model's maximum output (glm-4: 4095).")],
            _says("max_tokens must be a whole number of at least 1; {got}"),
        ),
        _param(
            "stop",
            Annotated[
                Annotated[str, Field(min_length=1)] | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=4)],
                Field(description="Stop word, or a list of up to 4 (the API documents one)."),
            ],
            _explain_stop,
        ),
        _param(
            "do_sample",
            Annotated[bool, Field(description="false: greedy decoding (temperature and top_p are ignored).")],
            _says("do_sample must be true or false; {got}"),
        ),
        _param(
            "seed",
            Annotated[int, Field(description="Sampling seed (sent by the SDK; server support unconfirmed).")],
            _says("seed must be a whole number; {got}"),
        ),
        _param(
            "tools",
            Annotated[list[Tool], Field(description="Tools the model may call.", json_schema_extra={"maxItems": MAX_FUNCTIONS})],
            _explain_tools,
        ),
        _param(
            "tool_choice",
            Annotated[Literal["auto"], Field(description='The API supports only "auto".')],
            _says('tool_choice supports only "auto" (the API\'s only value); {got}'),
        ),
        _param("response_format", ResponseFormat, _explain_object("response_format", ResponseFormat, "type")),
        _param(
            "user_id",
            Annotated[str, Field(min_length=6, max_length=128, description="End-user id, 6-128 characters.")],
            _says(_ID_TEXT.format(name="user_id", low=6, high=128)),
        ),
        _param(
            "request_id",
            Annotated[str, Field(min_length=6, max_length=64, description="Client request id, 6-64 characters (normally left to the platform).")],
            _says(_ID_TEXT.format(name="request_id", low=6, high=64)),
        ),
        _param(
            "thinking",
            Annotated[
                bool | ThinkingWord | Thinking,
                Field(
                    description="Thinking on, off or auto (the model decides: nothing is sent). YAML's bare on/off "
                    "(true/false), enabled, disabled and the API's {type: enabled|disabled, clear_thinking} mean the "
                    "same. Without it the model's default applies (on for glm-4.7 and the glm-5.x line)."
                ),
            ],
            _explain_thinking,
        ),
        _param(
            "reasoning_effort",
            Annotated[
                ReasoningEffort,
                Field(
                    description="How hard a reasoning model thinks (glm-5.2 and later): none and minimal skip "
                    "thinking, low and medium act as high, xhigh as max."
                ),
            ],
            _explain_choice("reasoning_effort", REASONING_EFFORT_VALUES),
        ),
        _param(
            "meta",
            Annotated[dict[str, str], Field(description="CharGLM role-play: user_info, bot_info, bot_name, user_name.")],
            _says("meta must be a mapping of text to text (user_info, bot_info, bot_name, user_name); {got}"),
        ),
        _param(
            "sensitive_word_check",
            SensitiveWordCheck,
            _explain_object("sensitive_word_check", SensitiveWordCheck, "status"),
        ),
    ]
}

# Request parameters of chat.completions.create that a suite may set or use as a grid axis.
REQUEST_PARAMS = tuple(PARAMS)


def check_param(name: str, value: Any) -> list[PathProblem]:
    """Problems with one request parameter value, each with the path inside the value."""
    param = PARAMS.get(name)
    if param is None:
        return [((), f"unknown request parameter {name!r}{did_you_mean(name, REQUEST_PARAMS)}")]
    return param.check(value)


def check_tools(tools: Any) -> list[PathProblem]:
    """Problems with a tools list (``tools:`` of a suite or case, or ``params.tools``)."""
    return PARAMS["tools"].check(tools)


def params_json_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """Each parameter's JSON Schema, and the definitions they refer to (``#/$defs/...``)."""
    defs: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for name, param in PARAMS.items():
        schema = param.adapter.json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        props[name] = schema
    return props, defs


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
    if is_number(t):
        if t <= 0:
            forced = " (overriding do_sample: true)" if sent.get("do_sample") is True else ""
            sent["temperature"], sent["do_sample"] = 0.01, False
            notes.append(f"temperature {t:g} is sent as 0.01 with do_sample=false{forced}")
        elif t >= 1:
            sent["temperature"] = 0.99
            notes.append(f"temperature {t:g} is sent as 0.99")
    p = sent.get("top_p")
    if is_number(p):
        if p >= 1:
            sent["top_p"] = 0.99
            notes.append(f"top_p {p:g} is sent as 0.99")
        elif p <= 0:
            sent["top_p"] = 0.01
            notes.append(f"top_p {p:g} is sent as 0.01")
    return sent, notes


CLAMP_REASON = "the zhipuai SDK keeps temperature and top_p inside (0, 1); glmeval records the value sent"
