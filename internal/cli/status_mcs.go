package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/crossmap/crossmap/internal/status"
)

// writeMCSTables writes the Multi-Cluster Services part of the status
// table (issue 15): each ServiceExport with the KEP's three conditions,
// then each ServiceImport with the clusters behind it. Nothing when the
// cluster has neither, so that users of the label-based export alone see
// the table they know.
func writeMCSTables(out io.Writer, v status.View) {
	if len(v.Exports) > 0 {
		fmt.Fprintf(out, "\nService exports (%d):\n", len(v.Exports))
		fmt.Fprintln(out, "EXPORT\tVALID\tREADY\tCONFLICT\tMESSAGE")
		for _, e := range v.Exports {
			var msgs []string
			cell := func(t, want, yes string) string {
				c, ok := e.Condition(t)
				switch {
				case !ok:
					return "-"
				case c.Status == want:
					return yes
				}
				if c.Message != "" {
					msgs = append(msgs, c.Message)
				}
				if c.Reason != "" {
					return c.Reason
				}
				return t + "=" + c.Status
			}
			valid, ready, conflict := cell("Valid", "True", "yes"), cell("Ready", "True", "yes"), cell("Conflict", "False", "no")
			msg := strings.Join(msgs, "; ")
			if msg == "" {
				msg = "-"
			}
			fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\n", oneLine(e.Key()), oneLine(valid), oneLine(ready), oneLine(conflict), oneLine(msg))
		}
	}
	if len(v.Imports) > 0 {
		fmt.Fprintf(out, "\nService imports (%d):\n", len(v.Imports))
		fmt.Fprintln(out, "IMPORT\tTYPE\tIPS\tPORTS\tCLUSTERS (READY/ENDPOINTS)")
		for _, i := range v.Imports {
			ips := strings.Join(i.IPs, ",")
			if ips == "" {
				ips = "-"
			}
			ports := make([]string, 0, len(i.Ports))
			for _, p := range i.Ports {
				port := strconv.Itoa(int(p.Port)) + "/" + p.Protocol
				if p.Name != "" {
					port = p.Name + ":" + port
				}
				ports = append(ports, port)
			}
			if len(ports) == 0 {
				ports = []string{"-"}
			}
			clusters := make([]string, 0, len(i.Clusters))
			for _, c := range i.Clusters {
				name := c.Cluster
				if c.Local {
					name += " (local)"
				}
				clusters = append(clusters, fmt.Sprintf("%s %d/%d", name, c.ReadyEndpoints, c.Endpoints))
			}
			if len(clusters) == 0 {
				clusters = []string{"none"}
			}
			fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\n", oneLine(i.Key()), oneLine(i.Type), oneLine(ips),
				oneLine(strings.Join(ports, ",")), oneLine(strings.Join(clusters, "; ")))
		}
	}
}
