"""Compile Kubernetes YAML with Emissary's own configuration compiler.

A test tool for internal/emissarytest. Usage (the Go harness runs it):

    /usr/bin/python3 compile.py EMISSARY_PYTHON_DIR SCHEMA_DIR < inputs.json

reads a JSON list of inputs, each Kubernetes YAML (Mappings, Hosts,
Listeners, TLSContexts...), runs ambassador.compile.Compile on each as
Emissary 3.10 would on its cluster snapshot, and writes a JSON list of
results to stdout, one per input:

    errors    Emissary's errors, per object: [{"object": ..., "error": ...}]
    vhosts    the Envoy virtual hosts of the listeners, each with its name,
              domains and routes as Emissary renders them, each route with
              the id of the Emissary group it comes from ("group")
    clusters  per Envoy cluster name, the service and the TLS origination
              context Emissary made it for

Importing Emissary takes about a second, compiling a few Mappings a
twentieth of that: hence one process for many inputs. Interpreting the
routes (shares, matches) is left to Go.
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

    results = [compile_one(Compile, logger, text) for text in json.load(sys.stdin)]
    json.dump(results, sys.stdout)


def compile_one(Compile, logger, text):
    result = Compile(logger, text, k8s=True)
    ir = result["ir"]

    errors = []
    for obj, errs in sorted(ir.aconf.errors.items()):
        for e in errs:
            errors.append({"object": obj, "error": str(e.get("error", e))})

    vhosts = []
    xds = result.get("xds")
    if xds is not None:
        # Envoy routes do not say which Emissary group they come from, and
        # two groups can have one match (another precedence, another Host
        # selector). Emissary's own V3Routes do; the virtual hosts hold
        # copies of them, found again by cluster and match.
        group_of = {}
        for r in xds.routes:
            group_of.setdefault(route_key(r), r._group.group_id)
        for listener in xds.as_dict()["static_resources"]["listeners"]:
            for chain in listener.get("filter_chains", []):
                for f in chain.get("filters", []):
                    rc = f.get("typed_config", {}).get("route_config")
                    if rc is None:
                        continue
                    for vh in rc.get("virtual_hosts", []):
                        routes = vh.get("routes", [])
                        vhosts.append(
                            {
                                "listener": listener.get("name", ""),
                                "name": vh.get("name", ""),
                                "domains": vh.get("domains", []),
                                "routes": [
                                    dict(r, group=group_of.get(route_key(r), "")) for r in routes
                                ],
                            }
                        )

    clusters = {}
    for c in ir.clusters.values():
        ctx = c.get("tls_context")
        clusters[c.envoy_name] = {
            "service": c.get("service", ""),
            "tls_context": ctx.name if ctx else "",
        }

    return {"errors": errors, "vhosts": vhosts, "clusters": clusters}


def route_key(route):
    """A route's cluster and match, less the x-forwarded-proto header that
    a listener's security model adds to the copies it makes."""
    match = dict(route.get("match", {}))
    match["headers"] = [
        h for h in match.get("headers", []) if h.get("name") != "x-forwarded-proto"
    ]
    return json.dumps([route.get("route", {}).get("cluster"), match], sort_keys=True)


if __name__ == "__main__":
    main()
