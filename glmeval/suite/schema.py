"""The JSON Schema of the suite format, for editor completion and validation (``glmeval schema``)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from glmeval.catalogue.models import chat_models
from glmeval.checks import load_builtin
from glmeval.records import MODES
from glmeval.suite.content import content_json_schema
from glmeval.suite.model import Matrix, Suite
from glmeval.suite.params import params_json_schema

__all__ = ["suite_json_schema"]


def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema of the suite format, for editor completion and validation.

    Pydantic describes the structure, and each request parameter's schema comes from the
    pydantic type the loader validates it with; the parts glmeval checks by hand (grid axes,
    checks, case files, prompts) get schemas written from the same rules, so an editor offers
    the same names and ranges the loader accepts.
    """
    schema = Suite.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    params, param_defs = params_json_schema()
    defs.update(param_defs)
    defs["RequestParams"] = {
        "type": "object",
        "description": "Request parameters of chat.completions.create (zhipu-api.md §2).",
        "properties": params,
        "additionalProperties": False,
    }
    axis_props: dict[str, Any] = {
        "model": {"description": "Models to compare.", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}], "examples": [chat_models()[:6]]},
        "provider": {"description": "Providers to compare (zhipu, zai, or names under providers:).", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
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
        **TypeAdapter(Matrix).json_schema(),
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
    tools_array = params["tools"]
    case_props = defs["Case"]["properties"]
    case_props["checks"] = {**checks_array, "description": case_props["checks"].get("description", "")}
    case_props["params"] = {"$ref": "#/$defs/RequestParams", "description": case_props["params"].get("description", "")}
    case_props["matrix"] = {"$ref": "#/$defs/Matrix", "description": case_props["matrix"].get("description", "")}
    case_props["tools"] = {**tools_array, "description": case_props["tools"].get("description", "")}
    case_props["tags"] = {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}], "description": case_props["tags"].get("description", "")}
    case_props["skip"] = {"anyOf": [{"type": "boolean"}, {"type": "string"}], "description": case_props["skip"].get("description", "")}
    case_props["id"] = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}], "description": case_props["id"].get("description", "")}
    content = content_json_schema()
    defs.update(content.pop("$defs"))
    defs["Message"]["properties"]["content"] = {
        "description": defs["Message"]["properties"]["content"].get("description", ""),
        **content,
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
