"""How JSON columns are written: `json.dumps`, except for text already serialised.

A value serialised once can then be written to two columns as it is: a new
ticket's decision record goes to the ticket and to its inbound message, and
serialising it costs more than either write.
"""

from __future__ import annotations

import json
from typing import Any


class SerializedJson(str):
    """JSON text, made by `serialized` of a value; written to a JSON column as it is."""


def serialized(value: Any) -> SerializedJson:
    """`value` as a JSON column would hold it."""
    return SerializedJson(json.dumps(value))


def dump_json(value: Any) -> str:
    """The text of `value` in a JSON column: the engine's JSON serializer."""
    if type(value) is SerializedJson:
        return value
    return json.dumps(value)
