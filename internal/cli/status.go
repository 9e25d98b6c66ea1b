package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Output formats of `crossmap status`.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// DefaultStatusServer is where a controller started with the defaults (or
// reached through `kubectl port-forward ... 8090`) serves its status API.
const DefaultStatusServer = "http://127.0.0.1:8090"

// statusTimeout bounds the whole request to the status API.
const statusTimeout = 10 * time.Second

// StatusOptions is what `crossmap status` can be told.
type StatusOptions struct {
	// Server is the base URL of the controller's status API.
	Server string
	// Output is OutputTable or OutputJSON.
	Output string
}

// DefaultStatusOptions returns the defaults the flags start from.
func DefaultStatusOptions() StatusOptions {
	return StatusOptions{Server: DefaultStatusServer, Output: OutputTable}
}

// BindFlags registers the flags of `crossmap status` on fs.
func (o *StatusOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Server, "server", o.Server, "base URL of the controller's status API (its --status-addr), e.g. after 'kubectl port-forward -n crossmap-system deploy/crossmap 8090'")
	fs.StringVar(&o.Output, "o", o.Output, "output format: table, or json (the /status document, indented)")
	fs.StringVar(&o.Output, "output", o.Output, "the same as -o")
}

// Validate reports every invalid setting at once.
func (o *StatusOptions) Validate() error {
	var errs []error
	if _, err := statusURL(o.Server); err != nil {
		errs = append(errs, err)
	}
	if o.Output != OutputTable && o.Output != OutputJSON {
		errs = append(errs, fmt.Errorf("-o %q: want %s or %s", o.Output, OutputTable, OutputJSON))
	}
	return errors.Join(errs...)
}

// statusURL is the /status URL under server. A bare host:port means http.
func statusURL(server string) (string, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return "", errors.New("--server must not be empty")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("--server %q: %w", server, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--server %q: the scheme must be http or https", server)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--server %q: no host", server)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q: want a base URL without query or fragment", server)
	}
	return strings.TrimSuffix(u.String(), "/") + "/status", nil
}

// ShowStatus reads the status API that o names and writes it to out in o's
// format.
func ShowStatus(ctx context.Context, o StatusOptions, out io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	view, raw, err := FetchStatus(ctx, &http.Client{Timeout: statusTimeout}, o.Server)
	if err != nil {
		return err
	}
	if o.Output == OutputJSON {
		return WriteStatusJSON(out, raw)
	}
	return WriteStatusTable(out, view)
}

// FetchStatus GETs /status from the status API at server and returns it
// decoded and as it came.
func FetchStatus(ctx context.Context, c *http.Client, server string) (status.View, []byte, error) {
	var view status.View
	u, err := statusURL(server)
	if err != nil {
		return view, nil, err
	}
	raw, err := getAPI(ctx, c, u, func(resp *http.Response, raw []byte) error {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, errorMessage(raw))
	})
	if err != nil {
		return view, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&view); err != nil {
		return view, nil, fmt.Errorf("GET %s: the response is not crossmap status JSON (%w); is --server a crossmap status API?", u, err)
	}
	if view.Links == nil && view.Routes == nil && view.Problems == nil {
		// Valid JSON, but none of the document's fields: some other server.
		return view, nil, fmt.Errorf("GET %s: the response has none of links, routes or problems; is --server a crossmap status API?", u)
	}
	return view, raw, nil
}

// getAPI GETs u from a crossmap status API and returns the body of a 200
// answer. Any other answer is the error notOK makes of it, so that each
// caller can say what it asked for; an API that cannot be reached gets
// the same hint everywhere, how to point --server at a controller.
func getAPI(ctx context.Context, c *http.Client, u string, notOK func(*http.Response, []byte) error) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the crossmap status API at %s: %w\n"+
			"Is the controller running, with --status-addr listening there? Point --server at it, e.g. "+
			"after 'kubectl port-forward -n crossmap-system deploy/crossmap 8090:8090' use --server http://127.0.0.1:8090", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the response of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, notOK(resp, raw)
	}
	return raw, nil
}

// errorMessage picks the message out of the status API's error body
// ({"error": ..., "code": ...}), or shows the start of any other body.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "empty body"
	}
	return strconv.Quote(s)
}

// WriteStatusJSON writes the /status document indented. It indents the body
// as received, so that fields this crossmap does not know yet are kept.
func WriteStatusJSON(out io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("indent status JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := out.Write(buf.Bytes())
	return err
}

// StatusRow is one line of the status table: one Link.
type StatusRow struct {
	Cluster  string
	Alive    string
	Latency  string
	Services int
	Routes   int
	Problems int
}

// StatusRows summarises v per Link: whether the remote cluster and its
// gateway are alive, how many Services are mirrored from it, how many
// routes send traffic to it, and how many problems concern it.
func StatusRows(v status.View) []StatusRow {
	rows := make([]StatusRow, 0, len(v.Links))
	for _, l := range v.Links {
		row := StatusRow{Cluster: l.Cluster, Alive: alive(l), Latency: "-", Services: len(l.MirroredServices)}
		if l.GatewayProbed && l.ProbeLatency != "" {
			row.Latency = l.ProbeLatency
		}
		routes := map[string]bool{}
		for _, r := range v.Routes {
			if slices.ContainsFunc(r.Backends, func(b mapper.RouteBackend) bool { return b.Cluster == l.Cluster }) {
				routes[r.Key()] = true
			}
		}
		row.Routes = len(routes)
		for _, p := range v.Problems {
			if p.Source == "link/"+l.Key() || routes[strings.TrimPrefix(p.Source, "route/")] {
				row.Problems++
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// alive reads like "yes", "no (gateway)", "no (api)" or "no (api, gateway)".
func alive(l status.Link) string {
	var dead []string
	if !l.RemoteReachable {
		dead = append(dead, "api")
	}
	if !l.GatewayAlive {
		dead = append(dead, "gateway")
	}
	if len(dead) == 0 {
		return "yes"
	}
	return "no (" + strings.Join(dead, ", ") + ")"
}

// WriteStatusTable writes one row per Link, then the problems, if any.
func WriteStatusTable(out io.Writer, v status.View) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(v.Links) == 0 {
		fmt.Fprintln(tw, "No Links: link a cluster with 'crossmap link NAME --kubeconfig FILE'.")
	} else {
		fmt.Fprintln(tw, "CLUSTER\tALIVE\tLATENCY\tSERVICES\tROUTES\tPROBLEMS")
		for _, r := range StatusRows(v) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", oneLine(r.Cluster), r.Alive, oneLine(r.Latency), r.Services, r.Routes, r.Problems)
		}
	}
	if len(v.Problems) > 0 {
		fmt.Fprintf(tw, "\nProblems (%d):\n", len(v.Problems))
		fmt.Fprintln(tw, "REASON\tOBJECT\tMESSAGE")
		for _, p := range v.Problems {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", oneLine(p.Reason), oneLine(p.Object.String()), oneLine(p.Message))
		}
	}
	var drills []status.Link
	for _, l := range v.Links {
		if l.Drill != nil {
			drills = append(drills, l)
		}
	}
	if len(drills) > 0 {
		// Rehearsals of losing a cluster (crossmap drill), active or the
		// last one of each Link.
		fmt.Fprintf(tw, "\nDrills (%d):\n", len(drills))
		fmt.Fprintln(tw, "CLUSTER\tDRILL\tBY\tSTARTED\tUNTIL")
		for _, l := range drills {
			d := l.Drill
			state := "active: drained for routing"
			if d.Ended != "" {
				state = d.Ended
				if d.StoppedBy != "" {
					state += " by " + d.StoppedBy
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", oneLine(l.Cluster), oneLine(state), oneLine(d.By), stampTime(d.StartedAt), stampTime(d.Until))
		}
	}
	var inForce []status.Route
	for _, r := range v.Routes {
		if r.Group != nil {
			inForce = append(inForce, r)
		}
	}
	if len(inForce) > 0 {
		// What Emissary does with each annotated Mapping's traffic now: its
		// whole group, whoever wrote the members (issue 12).
		fmt.Fprintf(tw, "\nRoutes in force (%d):\n", len(inForce))
		fmt.Fprintln(tw, "ROUTE\tFAILOVER\tHELD\tEMISSARY GROUP: MAPPING SHARE% (OWNER)")
		for _, r := range inForce {
			held := "no"
			if r.Held {
				held = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", oneLine(r.Key()), oneLine(r.Failover), held, oneLine(groupSummary(r.Group)))
		}
	}
	writeMCSTables(tw, v)
	return tw.Flush()
}

// groupSummary reads like "test/podinfo-east 50 (crossmap, east);
// test/podinfo 25 (this Mapping, configured 50); test/podinfo-v2 25
// (other)".
func groupSummary(g *mapper.RouteGroup) string {
	var parts []string
	for _, m := range g.Members {
		who := map[string]string{mapper.OwnerUser: "this Mapping", mapper.OwnerCrossmap: "crossmap"}[m.Owner]
		if who == "" {
			who = "other"
		}
		if m.Cluster != "" {
			who += ", " + m.Cluster
		}
		if m.Configured != nil && *m.Configured != m.Share {
			who += fmt.Sprintf(", configured %d", *m.Configured)
		}
		parts = append(parts, fmt.Sprintf("%s %d (%s)", m.Mapping, m.Share, who))
	}
	s := strings.Join(parts, "; ")
	if g.Error != "" {
		s += "; Emissary rejects the group: " + g.Error
	}
	return s
}

// oneLine keeps a cell on its line and in its column: a tab or newline in a
// message would break the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
