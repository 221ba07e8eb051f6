"""TFaaS's protobuf messages (``tfaas.proto``, package ``tfaaspb``), built at import.

TFaaS's C++ client (``TFClient.cc``, used in CMSSW) posts a serialised ``Row`` to
``/proto`` and parses a ``Predictions`` reply. The messages are written here as
descriptors, field for field as in TFaaS's ``src/proto/tfaas.proto``::

    message Row         { repeated string key = 1; repeated float value = 2; string model = 3; }
    message Class       { string label = 1; float probability = 2; }
    message Predictions { repeated Class prediction = 1; }

and turned into message classes by ``google.protobuf`` at run time: no ``protoc`` step
at build time, and a pool of their own, so no other ``tfaas.proto`` loaded in the same
process can clash with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from ..errors import SpecError

__all__ = ["decode_row", "encode_predictions"]

_Field = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="mlaas_jupyter/tfaas.proto", package="tfaaspb", syntax="proto3"
    )
    fields: dict[str, list[tuple[str, int, int, int, str]]] = {
        "Row": [
            ("key", 1, _Field.TYPE_STRING, _Field.LABEL_REPEATED, ""),
            ("value", 2, _Field.TYPE_FLOAT, _Field.LABEL_REPEATED, ""),
            ("model", 3, _Field.TYPE_STRING, _Field.LABEL_OPTIONAL, ""),
        ],
        "Class": [
            ("label", 1, _Field.TYPE_STRING, _Field.LABEL_OPTIONAL, ""),
            ("probability", 2, _Field.TYPE_FLOAT, _Field.LABEL_OPTIONAL, ""),
        ],
        "Predictions": [
            ("prediction", 1, _Field.TYPE_MESSAGE, _Field.LABEL_REPEATED, ".tfaaspb.Class"),
        ],
    }
    for name, declared in fields.items():
        described = proto.message_type.add(name=name)
        for field, number, kind, label, type_name in declared:
            described.field.add(
                name=field, number=number, type=kind, label=label, type_name=type_name or None
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tfaaspb.{name}"))
        for name in fields
    }


_CLASSES = _message_classes()
Row, Class, Predictions = _CLASSES["Row"], _CLASSES["Class"], _CLASSES["Predictions"]


def decode_row(body: bytes) -> tuple[str | None, list[str], list[float]]:
    """(model or None, keys, values) of a serialised TFaaS ``Row`` (one event).

    Raises
    ------
    SpecError
        When the body is not a ``Row``, has no keys, or not one value per key.
    """
    try:
        row = Row.FromString(body)
    except message.DecodeError as err:
        raise SpecError("body", f"not a TFaaS Row protobuf message ({err})") from None
    keys, values = list(row.key), list(row.value)
    if not keys:
        raise SpecError("key", "a TFaaS Row needs its feature names (field 1, key)")
    if len(keys) != len(values):
        raise SpecError(
            "value", f"a TFaaS Row needs one value per key: {len(keys)} keys, {len(values)} values"
        )
    return (row.model or None), keys, values


def encode_predictions(probabilities: Sequence[float], labels: Sequence[str]) -> bytes:
    """A serialised TFaaS ``Predictions``: one ``Class`` per output of the event."""
    reply = Predictions(
        prediction=[
            Class(label=label, probability=float(p))
            for p, label in zip(probabilities, labels, strict=True)
        ]
    )
    data: bytes = reply.SerializeToString()
    return data
