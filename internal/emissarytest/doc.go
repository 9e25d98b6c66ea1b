// Package emissarytest is test support beside the pipeline (watch →
// snapshot → translate → diff → apply → status): it holds what the translate
// stage writes against Emissary's own configuration compiler, the judge of
// whether Emissary routes those objects the way crossmap says it does.
//
// Compile writes Kubernetes objects (Mappings, Hosts, Listeners,
// TLSContexts...) as YAML and runs Emissary 3.10's Python compiler
// (python/ambassador in the emissary Go module go.mod requires,
// ambassador.compile.Compile) on them with Debian's /usr/bin/python3,
// through the small driver compile.py. It returns Emissary's errors and, per
// Envoy virtual host, the routes Emissary would send to Envoy, in order, a
// weighted group folded into one Route whose members carry their shares.
//
// Emissary itself is not run, and neither is Envoy: the compiler's output is
// the configuration Emissary would hand to Envoy, which is what crossmap's
// rules (mapper's weights and groups, the dev edge's table) claim to predict.
//
// What the compiler needs: the Debian packages tools/emissary-python.sh
// installs (`make test` and .ci/run call it), and two stand-ins kept here
// (pystub: orjson and durationpy, which Debian does not package). A missing
// piece is an error that names the command that fixes it; tests fail on it,
// they never skip.
//
// The conformance test (conformance_test.go) runs the route role's
// reconcile (controller.RouteViews) on a table of scenarios, compiles what
// each cluster then holds, all in one run of the compiler (CompileAll), and
// holds the compiler's routes against the shares /status/routes reports
// (every Emissary group in force, served by the status API's handler) and
// against the dev edge's table (edge, Table.VirtualHosts).
package emissarytest
