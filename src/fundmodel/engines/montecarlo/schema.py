"""The base of the engine's input models: camelCase JSON, no unknown fields, finite numbers only."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Strict
from pydantic.alias_generators import to_camel

Number = Annotated[float, Strict()]
"""Every number of the engine's input: an int is accepted, a bool (``true`` is not 1) or a string is not.

Each field also states a range with an economically meaningful minimum, so that a denormal or an
otherwise tiny positive value cannot turn into an infinity or a NaN inside the simulation.
"""


class CamelModel(BaseModel):
    """Immutable input model whose JSON form is camelCase; Python code may use snake_case names too."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        validate_default=True,
    )
