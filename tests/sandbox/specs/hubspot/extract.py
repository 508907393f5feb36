"""Refresh the spec excerpts in this folder from a checkout of HubSpot's public specs.

Usage: ``python tests/sandbox/specs/hubspot/extract.py <checkout of
HubSpot/HubSpot-public-api-spec-collection>``. For each spec file below, it keeps the
success-response schemas of every operation (and the ``Error`` schema), plus every
component schema they reference, and records the source repository, path and commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = "HubSpot/HubSpot-public-api-spec-collection"
SOURCES = {
    "deals": "PublicApiSpecs/CRM/Deals/Rollouts/424/v3/deals.json",
    "notes": "PublicApiSpecs/CRM/Notes/Rollouts/424/v3/notes.json",
    "tasks": "PublicApiSpecs/CRM/Tasks/Rollouts/424/v3/tasks.json",
    "line_items": "PublicApiSpecs/CRM/Line Items/Rollouts/424/v3/lineItems.json",
    "products": "PublicApiSpecs/CRM/Products/Rollouts/424/v3/products.json",
    "objects": "PublicApiSpecs/CRM/Objects/Rollouts/424/v3/objects.json",
    "associations_v4": "PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json",
    "associations_schema_v4": (
        "PublicApiSpecs/CRM/Associations Schema/Rollouts/130902/v4/associationsSchema.json"
    ),
    "properties": "PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json",
    "owners": "PublicApiSpecs/CRM/Crm Owners/Rollouts/146888/v3/crmOwners.json",
    "pipelines": "PublicApiSpecs/CRM/Pipelines/Rollouts/145896/v3/pipelines.json",
}
METHODS = ("get", "post", "put", "patch", "delete")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def excerpt(spec: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    operations: dict[str, dict[str, Any]] = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            responses = {}
            for status, answer in op["responses"].items():
                if status == "default":
                    continue
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                responses[status] = schema
            operations[f"{method.upper()} {path}"] = responses
    wanted, todo = set(), {"Error", *_refs(operations)}
    while todo:
        name = todo.pop()
        if name in wanted or name not in schemas:
            continue
        wanted.add(name)
        todo |= _refs(schemas[name])
    return {
        "source": source,
        "operations": operations,
        "components": {"schemas": {n: schemas[n] for n in sorted(wanted)}},
    }


def main(checkout: Path) -> None:
    here = Path(__file__).parent
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name, path in SOURCES.items():
        raw = subprocess.run(
            ["git", "-C", str(checkout), "show", f"HEAD:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = {"repo": REPO, "path": path, "commit": commit}
        out = excerpt(json.loads(raw), source)
        (here / f"{name}.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
