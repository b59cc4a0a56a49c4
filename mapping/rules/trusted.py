"""Pydantic models built from values already known to be valid, without validating them again.

Intake builds a few small models for every report (its facts, the rule log, the routing) from
values that were validated already: fields of other validated models (the case, the parsed
email, the rule set) or text our own code wrote. Validating them again cost about 1 us each
(`model_construct`, which fills defaults and works out the fields set, cost twice that), for
every report. Only code that knows every value is of its field's type may use this; anything
from outside goes through the model's own validation.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

__all__ = ["trusted"]

Model = TypeVar("Model", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__


def trusted(cls: type[Model], fields: dict[str, object], fields_set: set[str]) -> Model:
    """An instance of `cls` with exactly these field values, made as pydantic's `__copy__` does.

    `fields` must hold every field of `cls` (defaults too); `fields_set` is what validation
    would have recorded as set (the names passed). Works for frozen models as well.
    """
    instance: Model = _new(cls)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", fields_set)
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance
