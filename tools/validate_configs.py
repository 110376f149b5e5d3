#!/usr/bin/python3
"""Validates task files (YAML or JSON) against the schema printed by `netlens schema`.

    netlens schema > schema.json && /usr/bin/python3 tools/validate_configs.py schema.json configs/*

Exit code 0 when every file is valid, 1 otherwise (each problem printed with its path).
"""
import json
import sys

import jsonschema
import yaml


def main():
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    bad = 0
    for path in sys.argv[2:]:
        with open(path) as f:
            doc = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
        errors = list(validator.iter_errors(doc))
        for e in errors:
            print(f"{path}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}")
        bad += bool(errors)
        if not errors:
            print(f"{path}: valid")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
