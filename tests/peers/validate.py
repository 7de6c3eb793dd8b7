#!/usr/bin/env python3
"""Validates discovery documents with independent validators; prints one JSON line.

  python3 validate.py openapi FILE                      -> {"valid": true} | {"valid": false, "error": "..."}
      OpenAPI 3.x document validation (openapi-spec-validator; 3.1 uses JSON Schema 2020-12).
  python3 validate.py schema SCHEMA_FILE INSTANCE_FILE  -> same shape
      The instance against a JSON Schema (jsonschema, draft from $schema, else 2020-12); the
      schema itself is checked first.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".pydeps"))


def main(argv):
    kind = argv[1]
    try:
        if kind == "openapi":
            from openapi_spec_validator import validate

            with open(argv[2]) as f:
                validate(json.load(f))
        elif kind == "schema":
            import jsonschema

            with open(argv[2]) as f:
                schema = json.load(f)
            with open(argv[3]) as f:
                instance = json.load(f)
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            cls.check_schema(schema)
            cls(schema).validate(instance)
        else:
            raise SystemExit(f"unknown kind {kind!r}")
    except Exception as err:  # a validation failure is an answer, not a crash
        print(json.dumps({"valid": False, "error": f"{type(err).__name__}: {err}"[:2000]}))
        return
    print(json.dumps({"valid": True}))


main(sys.argv)
