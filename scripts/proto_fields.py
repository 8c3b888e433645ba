#!/usr/bin/env python3
"""Print the messages and services of Deephaven's own protocol descriptors,
from the deephaven-core wheel in the project's .venv, as JSON:

  {"messages": {"<full name>": {"<field>": [number, "<type>"], ...}, ...},
   "methods":  {"<service full name>/<method>": ["<input>", "<output>"], ...}}

pkg/deephaven's descriptor test compares our minimal .proto files with this,
so a wrong field number or method name fails a test instead of a server call.
Nothing here is copied into the project; it is only read.
"""
import json

from google.protobuf.descriptor import FieldDescriptor

from deephaven_core.proto import (application_pb2, config_pb2, console_pb2, inputtable_pb2,
                                  object_pb2, session_pb2, table_pb2, ticket_pb2)

TYPES = {v: k[len("TYPE_"):].lower() for k, v in vars(FieldDescriptor).items() if k.startswith("TYPE_")}


def walk(desc, out):
    fields = {}
    for f in desc.fields:
        t = TYPES[f.type]
        if f.message_type is not None:
            t = f.message_type.full_name
        elif f.enum_type is not None:
            t = f.enum_type.full_name
        fields[f.name] = [f.number, t]
    out[desc.full_name] = fields
    for n in desc.nested_types:
        walk(n, out)
    for e in desc.enum_types:
        out[e.full_name] = {v.name: [v.number, "enum_value"] for v in e.values}


def main():
    messages, methods = {}, {}
    for mod in (application_pb2, config_pb2, console_pb2, inputtable_pb2, object_pb2,
                session_pb2, table_pb2, ticket_pb2):
        fd = mod.DESCRIPTOR
        for m in fd.message_types_by_name.values():
            walk(m, messages)
        for e in fd.enum_types_by_name.values():
            messages[e.full_name] = {v.name: [v.number, "enum_value"] for v in e.values}
        for s in fd.services_by_name.values():
            for m in s.methods:
                methods[s.full_name + "/" + m.name] = [m.input_type.full_name, m.output_type.full_name]
    print(json.dumps({"messages": messages, "methods": methods}, sort_keys=True))


if __name__ == "__main__":
    main()
