"""The suite: the typed, validated form of a YAML suite file.

``load_suite`` reads a suite and reports every problem with its file and line. The parts:

- :mod:`~glmeval.suite.yamlsrc`: YAML and case files that remember where each value was written;
- :mod:`~glmeval.suite.model`: the pydantic models (Suite, Case, Message, Settings);
- :mod:`~glmeval.suite.params`: request parameters as pydantic types (readable thinking values
  and what the API gets for them), the SDK's clamping; :mod:`~glmeval.suite.websearch` the
  web_search tool's settings;
- :mod:`~glmeval.suite.content`: message content parts (text, images embedded from files);
- :mod:`~glmeval.suite.capabilities`: what the catalogue says a model takes (unknown models,
  thinking, reasoning_effort), as warnings;
- :mod:`~glmeval.suite.grid`: grid axes and parameter maps as a suite writes them;
- :mod:`~glmeval.suite.cases`: case entries, case files, CSV cells, matrix fan-out;
- :mod:`~glmeval.suite.checks`: check entries, their arguments, a suite's check files;
- :mod:`~glmeval.suite.templating`: the Jinja2 sandbox, shared with the planner;
- :mod:`~glmeval.suite.problems`: the problem collector, pydantic errors in plain words;
- :mod:`~glmeval.suite.loader`: the passes that load a suite;
- :mod:`~glmeval.suite.schema`: the JSON Schema ``glmeval schema`` prints.

The planner (:mod:`glmeval.plan`) imports this package; nothing here imports the planner.
"""

from __future__ import annotations

from glmeval.suite.cases import CASE_KEYS, CSV_COLUMNS, show_value, source_bytes
from glmeval.suite.checks import COMMON_CHECK_OPTIONS, parse_check
from glmeval.suite.grid import GRID_AXES, GRID_RULES
from glmeval.suite.loader import MAX_CASES, MAX_JOBS, MAX_VARIANTS, load_suite
from glmeval.suite.model import ROLES, Case, Message, ModelLimits, Settings, Suite
from glmeval.suite.params import CLAMP_REASON, MAX_FUNCTIONS, PARAMS, REQUEST_PARAMS, TOOL_NAME, check_param, sdk_params
from glmeval.suite.problems import Problems
from glmeval.suite.schema import suite_json_schema
from glmeval.suite.templating import UNTEMPLATED_CHECK_ARGS, content_templates, templated_check_args

__all__ = [
    "CASE_KEYS",
    "CLAMP_REASON",
    "COMMON_CHECK_OPTIONS",
    "CSV_COLUMNS",
    "GRID_AXES",
    "GRID_RULES",
    "MAX_CASES",
    "MAX_FUNCTIONS",
    "MAX_JOBS",
    "MAX_VARIANTS",
    "PARAMS",
    "REQUEST_PARAMS",
    "ROLES",
    "TOOL_NAME",
    "UNTEMPLATED_CHECK_ARGS",
    "Case",
    "Message",
    "ModelLimits",
    "Problems",
    "Settings",
    "Suite",
    "check_param",
    "content_templates",
    "load_suite",
    "parse_check",
    "sdk_params",
    "show_value",
    "source_bytes",
    "suite_json_schema",
    "templated_check_args",
]
