#!/usr/bin/env python3
"""Regenerate schemas/istio/*.jsonl from Istio's CRDs (crd-all.gen.yaml of an Istio release).

canary embeds the schemas of the three CRDs it writes objects for, as compact JSON that holds
only what validation reads: the group, the kind, and each served version's openAPIV3Schema
without its `description` annotations, as a table of nodes (see `nodes`). Versions whose schemas
are the same (Istio serves v1, v1beta1 and v1alpha3 of one schema) share one entry. Every
`canary next` checks the state it is about to write against these, so 50 KB of JSON instead of
600 KB of YAML keeps each step quick.

The file is JSON Lines: a first line with the group, the kind and each entry's versions and
node count, then every node on a line of its own, the first entry's nodes first. canary finds
a node by its line, without reading the JSON of the others.

Usage: python3 schemas/refresh.py PATH/TO/crd-all.gen.yaml    (needs PyYAML: pip install pyyaml)
"""
import json
import os
import sys

import yaml

WANTED = {
    "authorizationpolicies.security.istio.io": "authorizationpolicy",
    "destinationrules.networking.istio.io": "destinationrule",
    "virtualservices.networking.istio.io": "virtualservice",
}


def schema(node):
    """A schema object without its description; under `properties` the keys are field names."""
    if isinstance(node, list):
        return [schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: schema(s) for name, s in value.items()}
        else:
            out[key] = schema(value)
    return out


SUBSCHEMA = ("items", "additionalProperties", "not")
SUBSCHEMAS = ("oneOf", "anyOf", "allOf")


def nodes(root):
    """The schema as a table of nodes, the root first, each subschema replaced by its index.

    canary reads a node only when the object it checks reaches it; as a table, reading one
    scans that node's own keywords, not every schema nested inside it.
    """
    table = []

    def add(node):
        index = len(table)
        table.append(None)
        out = dict(node)
        if isinstance(node.get("properties"), dict):
            out["properties"] = {name: add(s) for name, s in sorted(node["properties"].items())}
        for key in SUBSCHEMA:
            if isinstance(node.get(key), dict):
                out[key] = add(node[key])
        for key in SUBSCHEMAS:
            if key in node:
                out[key] = [add(s) for s in node[key]]
        table[index] = out
        return index

    add(root)
    return table


def compact(spec):
    """What canary embeds of a CRD's spec: served versions grouped by identical schema."""
    schemas = []
    for version in spec["versions"]:
        if not version.get("served"):
            continue
        body = nodes(schema(version["schema"]["openAPIV3Schema"]))
        for entry in schemas:
            if entry["nodes"] == body:
                entry["versions"].append(version["name"])
                break
        else:
            schemas.append({"versions": [version["name"]], "nodes": body})
    return {"group": spec["group"], "kind": spec["names"]["kind"], "schemas": schemas}


def json_lines(crd):
    """The CRD as canary reads it: a header line, then one line per node."""
    header = dict(crd)
    header["schemas"] = [
        {"versions": entry["versions"], "nodes": len(entry["nodes"])} for entry in crd["schemas"]
    ]
    lines = [header] + [node for entry in crd["schemas"] for node in entry["nodes"]]
    return "".join(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n" for line in lines)


def main(source):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "istio")
    written = set()
    for doc in yaml.safe_load_all(open(source)):
        name = (doc or {}).get("metadata", {}).get("name")
        if name not in WANTED:
            continue
        with open(os.path.join(here, WANTED[name] + ".jsonl"), "w") as out:
            out.write(json_lines(compact(doc["spec"])))
        written.add(name)
    missing = set(WANTED) - written
    if missing:
        sys.exit(f"not found in {source}: {', '.join(sorted(missing))}")


if __name__ == "__main__":
    main(sys.argv[1])
