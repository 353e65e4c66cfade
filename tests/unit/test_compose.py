"""docker-compose.yml is valid against the Compose specification's JSON schema (shipped copy)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_matches_the_compose_spec() -> None:
    schema = json.loads((ROOT / "schemas" / "compose-spec.json").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.validate(compose, schema)


def test_the_schema_rejects_an_invalid_file() -> None:
    schema = json.loads((ROOT / "schemas" / "compose-spec.json").read_text())
    bad = {"services": {"server": {"image": "x", "restart_policy_typo": "always"}}}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("an invalid compose file passed validation")
