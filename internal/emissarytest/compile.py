"""Compile Kubernetes YAML with Emissary's own configuration compiler.

A test tool for internal/emissarytest. Usage (the Go harness runs it):

    /usr/bin/python3 compile.py EMISSARY_PYTHON_DIR SCHEMA_DIR < objects.yaml

reads Mappings, Hosts, Listeners, TLSContexts... as Kubernetes YAML, runs
ambassador.compile.Compile on them as Emissary 3.10 would on its cluster
snapshot, and writes one JSON object to stdout:

    errors    Emissary's errors, per object: [{"object": ..., "error": ...}]
    vhosts    the Envoy virtual hosts of the first HTTP listener, each with
              its name, domains and routes, as Emissary renders them
    clusters  per Envoy cluster name, the service and the TLS origination
              context Emissary made it for

Interpreting the routes (shares, matches) is left to Go.
"""

import json
import logging
import sys


def main():
    emissary_python, schema_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, emissary_python)

    # Emissary looks its CRD schemas up through setuptools; they only
    # validate input it did not get from Kubernetes, so an empty directory
    # does for compiling.
    import ambassador.config.config as config

    config.resource_filename = lambda _req, _name: schema_dir

    from ambassador.compile import Compile

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logger = logging.getLogger("emissarytest")

    result = Compile(logger, sys.stdin.read(), k8s=True)
    ir = result["ir"]

    errors = []
    for obj, errs in sorted(ir.aconf.errors.items()):
        for e in errs:
            errors.append({"object": obj, "error": str(e.get("error", e))})

    vhosts = []
    xds = result.get("xds")
    if xds is not None:
        for listener in xds.as_dict()["static_resources"]["listeners"]:
            for chain in listener.get("filter_chains", []):
                for f in chain.get("filters", []):
                    rc = f.get("typed_config", {}).get("route_config")
                    if rc is None:
                        continue
                    for vh in rc.get("virtual_hosts", []):
                        vhosts.append(
                            {
                                "listener": listener.get("name", ""),
                                "name": vh.get("name", ""),
                                "domains": vh.get("domains", []),
                                "routes": vh.get("routes", []),
                            }
                        )

    clusters = {}
    for c in ir.clusters.values():
        clusters[c.envoy_name] = {
            "service": c.get("service", ""),
            "tls_context": c.get("tls_context").name if c.get("tls_context") else "",
        }

    json.dump({"errors": errors, "vhosts": vhosts, "clusters": clusters}, sys.stdout)


if __name__ == "__main__":
    main()
