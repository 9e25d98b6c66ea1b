package cli

import (
	"bytes"
	"testing"

	"github.com/crossmap/crossmap/internal/status"
)

// TestWriteStatusTableMCS: issue 15. After the Links, each ServiceExport
// with the KEP-1645 conditions (the reason where one is not as it should
// be, with its message), then each ServiceImport with its type, clusterset
// IP, merged ports and the clusters behind it.
func TestWriteStatusTableMCS(t *testing.T) {
	v := status.View{Links: []status.Link{}, Routes: []status.Route{}, Problems: []status.Problem{},
		Exports: []status.Export{
			{Namespace: "test", Name: "ghost", Conditions: []status.Condition{
				{Type: "Valid", Status: "False", Reason: "NoService", Message: "no Service test/ghost to export"}}},
			{Namespace: "test", Name: "hello", Conditions: []status.Condition{
				{Type: "Valid", Status: "True", Reason: "Valid"},
				{Type: "Ready", Status: "True", Reason: "Ready"},
				{Type: "Conflict", Status: "True", Reason: "PortConflict", Message: "port tcp:\t43/TCP here,\n42/TCP in west"}}},
			{Namespace: "test", Name: "podinfo", Conditions: []status.Condition{
				{Type: "Valid", Status: "True", Reason: "Valid"},
				{Type: "Ready", Status: "False", Reason: "Pending"},
				{Type: "Conflict", Status: "False", Reason: "NoConflicts"}}},
		},
		Imports: []status.Import{
			{Namespace: "test", Name: "db", Type: "Headless", Ports: []status.ImportPort{{Protocol: "TCP", Port: 5432}},
				Clusters: []status.ImportCluster{{Cluster: "east", Endpoints: 1}}},
			{Namespace: "test", Name: "hello", Type: "ClusterSetIP", IPs: []string{"10.0.0.9"},
				Ports:    []status.ImportPort{{Name: "tcp", Protocol: "TCP", Port: 42}, {Name: "udp", Protocol: "UDP", Port: 42}},
				Clusters: []status.ImportCluster{{Cluster: "east", Endpoints: 1, ReadyEndpoints: 1}, {Cluster: "west", Local: true, Endpoints: 2, ReadyEndpoints: 2}}},
			{Namespace: "test", Name: "gone", Type: "ClusterSetIP", IPs: []string{"10.0.0.10"}},
		},
	}
	var out bytes.Buffer
	if err := WriteStatusTable(&out, v); err != nil {
		t.Fatal(err)
	}
	want := `No Links: link a cluster with 'crossmap link NAME --kubeconfig FILE'.

Service exports (3):
EXPORT        VALID      READY    CONFLICT      MESSAGE
test/ghost    NoService  -        -             no Service test/ghost to export
test/hello    yes        yes      PortConflict  port tcp: 43/TCP here, 42/TCP in west
test/podinfo  yes        Pending  no            -

Service imports (3):
IMPORT      TYPE          IPS        PORTS                  CLUSTERS (READY/ENDPOINTS)
test/db     Headless      -          5432/TCP               east 0/1
test/hello  ClusterSetIP  10.0.0.9   tcp:42/TCP,udp:42/UDP  east 1/1; west (local) 2/2
test/gone   ClusterSetIP  10.0.0.10  -                      none
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}
