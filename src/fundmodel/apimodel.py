"""Base class of the public JSON schemas: camelCase on the wire, snake_case in Python, strict.

Also the field types every request model builds on, so that each bad input is a 422 naming its field
rather than an error from the database or the engine: text that can be stored (:data:`StorableText`),
numbers that are numbers (:data:`StrictNumber`, :data:`StrictInteger`: a JSON ``true`` is not 1), ids
bounded by their columns (:data:`MAX_ROW_ID`), and the published shapes of the raw stage inputs that
the stage-validation layer judges itself (:data:`RawStageName`, :data:`RawStageDistribution`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from fundmodel.stages import MAX_ENTRIES, MAX_STAGE_NAME_LENGTH, has_unstorable_characters


class ApiModel(BaseModel):
    """Request and response bodies of the HTTP API (never database rows)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        allow_inf_nan=False,
        serialize_by_alias=True,
    )


MAX_ROW_ID = 2**31 - 1
"""The largest id or version the API accepts: they end in ``Integer`` columns, 32-bit on PostgreSQL
(wider on SQLite), so anything larger is refused as input instead of failing in the database."""

NO_NUL_PATTERN = "^[^\\u0000]*$"
"""What the OpenAPI document says of every text field (JSON Schema cannot express "no lone surrogate")."""

StrictNumber = Annotated[float, Strict()]
"""A JSON number: integers are accepted, booleans and numeric strings are not."""


def _integral_float_as_int(value: Any) -> Any:
    # JSON Schema (and so every generated client) counts 2024.0 as an integer; a fraction is not one.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL_FLOAT_AS_INT = BeforeValidator(_integral_float_as_int)

StrictInteger = Annotated[int, Strict(), INTEGRAL_FLOAT_AS_INT]
"""A JSON integer (``2024`` or ``2024.0``): booleans, fractions and numeric strings are not. Bounds go in
the field's ``Field(ge=..., le=...)``; for an optional field use :data:`RowId` or spell the bounds inside
the ``Annotated`` before ``INTEGRAL_FLOAT_AS_INT``, or OpenAPI shows them as unknown ``ge``/``le`` keys."""

RowId = Annotated[int, Strict(), Field(ge=1, le=MAX_ROW_ID), INTEGRAL_FLOAT_AS_INT]
"""An id or version a client sends back: a strict integer in 1..MAX_ROW_ID."""


def _reject_unstorable_text(text: str) -> str:
    if has_unstorable_characters(text):
        # A typed error, so clients read "unstorable_text" rather than a generic "value_error".
        raise PydanticCustomError("unstorable_text", "must not contain NUL (U+0000) or an unpaired surrogate")
    return text


StorableText = Annotated[
    str,
    AfterValidator(_reject_unstorable_text),
    Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
]
"""Text a database column (PostgreSQL refuses NUL) and a UTF-8 response can hold; add length limits."""

RawStageName = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_STAGE_NAME_LENGTH,
            "pattern": NO_NUL_PATTERN,
        }
    ),
]
"""A stage name as sent: published as a string, but validated by the stage layer, which turns anything
else (``null``, a number, NUL) into its own ``MALFORMED_STAGE`` problem, the same in every mode."""

RawStageDistribution = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_ENTRIES,
            "propertyNames": {"minLength": 1, "maxLength": MAX_STAGE_NAME_LENGTH, "pattern": NO_NUL_PATTERN},
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        }
    ),
]
"""A stage distribution as sent (stage name -> fraction): published as that object, but validated by the
stage layer, so a malformed one (an array, a NaN, ``1e309`` or a string weight) is one
``MALFORMED_STAGE_DISTRIBUTION`` problem naming the field and the offending keys, never a generic error."""


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
