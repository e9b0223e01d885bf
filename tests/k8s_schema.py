"""Validation against the official Kubernetes JSON schemas, fast enough to run on everything.

``kubernetes_validate.validate`` re-reads and re-parses the (large) definitions file on every
call; this helper builds one validator per kind from the same files, shipped by the
``kubernetes-validate`` package, and keeps it.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

#: The Kubernetes release whose schemas the model follows ("current" is v1.34-v1.36).
K8S_VERSION = "1.35.0"
_DIR = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"


def _load(name: str) -> Any:
    ref = resources.files("kubernetes_validate").joinpath(f"{_DIR}/{name}")
    return json.loads(ref.read_text())


@functools.cache
def _definitions() -> Registry:
    return Resource.from_contents(_load("_definitions.json")) @ Registry()


@functools.cache
def _validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = _load(f"{kind.lower()}-{group_version}.json")
    registry = Resource.from_contents(schema) @ _definitions()
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``obj`` matches its kind's strict schema."""
    _validator(obj["kind"], obj["apiVersion"]).validate(obj)
