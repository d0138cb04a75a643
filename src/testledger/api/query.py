"""Query parameters validated as one pydantic model in one pass, documented in OpenAPI as FastAPI documents them.

FastAPI handles each declared query parameter on its own, re-inspecting its annotation on every
request: ~13 µs a parameter, 0.17 ms CPU of the run list's 13 (issue 11: a sixth of the request,
the gap to the target). A route that takes many parameters on a hot path declares them as a model
and depends on `query_model(Model)`; `openapi_parameters(Model)` gives its OpenAPI description
(`openapi_extra`), so `/openapi.json`, `/docs` and schemathesis see the same parameters as before.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def _is_list(annotation: Any) -> bool:
    """`list[str]` or `list[str] | None`: a parameter that may be repeated."""
    if typing.get_origin(annotation) is list:
        return True
    return any(typing.get_origin(arg) is list for arg in typing.get_args(annotation))


def query_model(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency: the request's query parameters as `model` (unknown ones ignored, a repeated
    scalar's last value as FastAPI takes it, a list field from every repetition), or 422 with the
    same errors FastAPI would give (located in `query`)."""
    fields = [(name, _is_list(field.annotation)) for name, field in model.model_fields.items()]

    async def parse(request: Request) -> M:  # no I/O: `async` keeps it off the threadpool
        query = request.query_params
        values: dict[str, Any] = {}
        for name, repeated in fields:
            if repeated:
                found = query.getlist(name)
                if found:
                    values[name] = found
            elif name in query:
                values[name] = query[name]
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
            ) from None

    return parse


def openapi_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` naming the model's fields as query parameters, in the form FastAPI
    gives declared ones (the field's schema; its description beside it too)."""
    schema_of_model = model.model_json_schema()
    required = set(schema_of_model.get("required", ()))
    parameters = []
    for name, schema in schema_of_model["properties"].items():
        if schema.get("default", ...) is None:  # FastAPI leaves an optional parameter's null default out
            schema = {key: value for key, value in schema.items() if key != "default"}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": schema}
        if "description" in schema:
            parameter["description"] = schema["description"]
        parameters.append(parameter)
    return {"parameters": parameters}
