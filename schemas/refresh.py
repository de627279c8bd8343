#!/usr/bin/env python3
"""Regenerate schemas/istio/*.json from Istio's CRDs (crd-all.gen.yaml of an Istio release).

canary embeds the three CRDs it writes objects for, as compact JSON without the schemas'
`description` annotations: validation never reads them, and parsing 140 KB of JSON instead of
600 KB of YAML keeps every `canary next` (which checks the state it is about to write) quick.

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


def main(source):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "istio")
    written = set()
    for doc in yaml.safe_load_all(open(source)):
        name = (doc or {}).get("metadata", {}).get("name")
        if name not in WANTED:
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            if "schema" in version:
                version["schema"] = schema(version["schema"])
        crd = {"apiVersion": doc["apiVersion"], "kind": doc["kind"],
               "metadata": {"name": name}, "spec": spec}
        with open(os.path.join(here, WANTED[name] + ".json"), "w") as out:
            out.write(json.dumps(crd, separators=(",", ":"), sort_keys=True) + "\n")
        written.add(name)
    missing = set(WANTED) - written
    if missing:
        sys.exit(f"not found in {source}: {', '.join(sorted(missing))}")


if __name__ == "__main__":
    main(sys.argv[1])
