"""User-defined functions made available where the code runs.

The AutoGen-compatible API (``with_requirements``, ``FunctionWithRequirements``, ``Alias``, ...) is
kept; what is built from it is sturdier: a deterministic ``functions`` module built
without executing anything on the host (:func:`build_functions_module`), injected at
every session start by :meth:`FunctionsModule.setup_code`, and stubs for prompts
(:func:`to_stub`, :func:`format_functions_for_prompt`). :func:`load_function_specs`
reads the kernel configuration's ``functions`` option (files, ``module:function``
references, source text).
"""

from __future__ import annotations

from ._imports import Alias, Import, ImportFromModule
from ._module import FunctionsModule, build_functions_module
from ._requirements import FunctionWithRequirements, FunctionWithRequirementsStr, with_requirements
from ._specs import load_function_specs
from ._stubs import (
    ACA_FUNCTION_PROMPT_TEMPLATE,
    FUNCTION_PROMPT_TEMPLATE,
    format_functions_for_prompt,
    to_stub,
)

__all__ = [
    "ACA_FUNCTION_PROMPT_TEMPLATE",
    "FUNCTION_PROMPT_TEMPLATE",
    "Alias",
    "FunctionWithRequirements",
    "FunctionWithRequirementsStr",
    "FunctionsModule",
    "Import",
    "ImportFromModule",
    "build_functions_module",
    "format_functions_for_prompt",
    "load_function_specs",
    "to_stub",
    "with_requirements",
]
