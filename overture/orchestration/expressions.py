"""Expressions in CEL, the Common Expression Language: conditions, input mapping and
string templates. Not Turing-complete and linear in its input; never Python `eval`.

A template string interpolates `{{ expr }}`; a string that is exactly one template
yields the expression's value itself (a number stays a number). Expressions see
`input` (the run input), `steps` (earlier step outputs), `run` (metadata) and, in
loops, `item` and `index`.
"""

from __future__ import annotations

import re
import sys
import types
from functools import lru_cache
from typing import Any

# The `cel` package's __init__ imports its interactive command-line tool (typer,
# prompt_toolkit, pygments: ~10 MiB in every web and worker process), which we never
# run. An empty stand-in for that one submodule keeps it out; the evaluator is the
# package's compiled extension and does not use it.
sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))
import cel  # noqa: E402

from overture.platform import jsonbody  # noqa: E402
from overture.platform.errors import OvertureError  # noqa: E402

MAX_EXPRESSION_CHARS = 2000
MAX_COMPREHENSIONS = 3  # map/filter/all/exists nest at most this deep in one expression
TEMPLATE_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
COMPREHENSION_RE = re.compile(
    r"\.\s*(?:map|filter|all|exists|exists_one)\s*\(\s*([A-Za-z_]\w*)\s*,")
ROOTS = frozenset({"input", "steps", "run", "item", "index", "error"})
# Templated values nest at most as deep as a request body may (platform/jsonbody.py), so
# rendering one recurses a bounded number of times whatever a stored definition holds.
MAX_DEPTH = jsonbody.MAX_DEPTH
TOO_DEEP = f"a templated value nests deeper than {MAX_DEPTH} levels"


class ExpressionError(OvertureError):
    status = 422
    code = "expression-error"
    title = "Expression error"


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """A compiled CEL program, or ExpressionError naming what is wrong."""
    text = source.strip()
    if not text:
        raise ExpressionError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    if len(COMPREHENSION_RE.findall(text)) > MAX_COMPREHENSIONS:
        raise ExpressionError(f"more than {MAX_COMPREHENSIONS} comprehensions in one expression")
    try:
        program = cel.compile(text)
    except ValueError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {str(exc).splitlines()[0]}") from exc
    bound = set(COMPREHENSION_RE.findall(text))  # the `x` of `list.map(x, ...)`
    unknown = {v.split(".")[0] for v in program.variables()} - ROOTS - bound
    if unknown:
        raise ExpressionError(f"unknown name(s) {', '.join(sorted(unknown))} in {text!r}; "
                              f"expressions see {', '.join(sorted(ROOTS))}")
    return program


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    program = compile_expression(source)
    try:
        return program.execute(scope)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ExpressionError(f"{source.strip()!r} failed: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def render(value: Any, scope: dict[str, Any], depth: int = 0) -> Any:
    """Render templates anywhere inside a JSON value."""
    if isinstance(value, str):
        return _render_string(value, scope)
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        raise ExpressionError(TOO_DEEP)
    if isinstance(value, dict):
        return {k: render(v, scope, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope, depth + 1) for v in value]
    return value


def _render_string(text: str, scope: dict[str, Any]) -> Any:
    whole = TEMPLATE_RE.fullmatch(text.strip())
    if whole and text.strip().count("{{") == 1:
        return evaluate(whole.group(1), scope)
    return TEMPLATE_RE.sub(lambda m: _as_text(evaluate(m.group(1), scope)), text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check(value: Any) -> list[str]:
    """Every expression inside a JSON value compiles; returns the problems found."""
    problems: list[str] = []
    todo = [(value, 0)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, str):
            for match in TEMPLATE_RE.finditer(node):
                try:
                    compile_expression(match.group(1))
                except ExpressionError as exc:
                    problems.append(exc.detail)
        elif isinstance(node, dict | list) and depth >= MAX_DEPTH:
            if TOO_DEEP not in problems:
                problems.append(TOO_DEEP)  # render would refuse it at run time
        elif isinstance(node, dict | list):
            children = node.values() if isinstance(node, dict) else node
            todo += [(child, depth + 1) for child in reversed(list(children))]
    return problems


def check_expression(source: str) -> str | None:
    try:
        compile_expression(source)
    except ExpressionError as exc:
        return exc.detail
    return None
