"""Base class of the public JSON schemas: camelCase on the wire, snake_case in Python, strict."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Request and response bodies of the HTTP API (never database rows)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        allow_inf_nan=False,
        serialize_by_alias=True,
    )


StageWarnings = Annotated[
    list[dict[str, Any]],
    Field(
        description=(
            "Stage-validation warnings (warn mode, and aliases under enforce): what was accepted, what "
            "it was normalized to and what to send instead. Empty when the input was canonical or the "
            "mode is off."
        ),
    ),
]
