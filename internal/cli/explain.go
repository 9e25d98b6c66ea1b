package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/crossmap/crossmap/internal/explain"
)

// ExplainOptions is what `crossmap explain` can be told.
type ExplainOptions struct {
	// Server is the base URL of the controller's status API.
	Server string
	// Output is OutputTable or OutputJSON.
	Output string
	// Request is the request to explain.
	Request explain.Request
}

// DefaultExplainOptions returns the defaults the flags start from.
func DefaultExplainOptions() ExplainOptions {
	return ExplainOptions{Server: DefaultStatusServer, Output: OutputTable}
}

// headerFlags is the repeatable -H flag.
type headerFlags struct{ lines *[]string }

func (h headerFlags) String() string {
	if h.lines == nil {
		return ""
	}
	return strings.Join(*h.lines, ", ")
}

func (h headerFlags) Set(s string) error {
	*h.lines = append(*h.lines, s)
	return nil
}

// BindFlags registers the flags of `crossmap explain` on fs.
func (o *ExplainOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Server, "server", o.Server, "base URL of the controller's status API (its --status-addr), e.g. after 'kubectl port-forward -n crossmap-system deploy/crossmap 8090'")
	fs.StringVar(&o.Output, "o", o.Output, "output format: table, or json (the /explain document, indented)")
	fs.StringVar(&o.Output, "output", o.Output, "the same as -o")
	fs.Var(headerFlags{&o.Request.Headers}, "H", `a request header, "name: value", as curl takes it (repeatable)`)
	fs.Var(headerFlags{&o.Request.Headers}, "header", "the same as -H")
}

// ParseExplainArgs parses `crossmap explain`'s command line: flags anywhere,
// and [METHOD] URL.
func (o *ExplainOptions) ParseExplainArgs(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(positional) {
	case 1:
		o.Request.Method, o.Request.URL = "GET", positional[0]
	case 2:
		o.Request.Method, o.Request.URL = positional[0], positional[1]
	default:
		return fmt.Errorf("want [METHOD] URL, e.g. GET http://podinfo.example.com/api/info; got %q", positional)
	}
	return nil
}

// Validate reports every invalid setting at once.
func (o *ExplainOptions) Validate() error {
	var errs []error
	if _, err := statusURL(o.Server); err != nil {
		errs = append(errs, err)
	}
	if o.Output != OutputTable && o.Output != OutputJSON {
		errs = append(errs, fmt.Errorf("-o %q: want %s or %s", o.Output, OutputTable, OutputJSON))
	}
	if o.Request.URL == "" {
		errs = append(errs, errors.New("no URL: want [METHOD] URL, e.g. GET http://podinfo.example.com/api/info"))
	}
	return errors.Join(errs...)
}

// ExplainURL is the /explain URL under server that asks about r.
func ExplainURL(server string, r explain.Request) (string, error) {
	u, err := statusURL(server)
	if err != nil {
		return "", err
	}
	q := url.Values{"url": {r.URL}}
	if r.Method != "" {
		q.Set("method", r.Method)
	}
	for _, h := range r.Headers {
		q.Add("header", h)
	}
	return strings.TrimSuffix(u, "/status") + "/explain?" + q.Encode(), nil
}

// Explain asks the status API that o names about o's request and writes
// the answer to out in o's format.
func Explain(ctx context.Context, o ExplainOptions, out io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	e, raw, err := FetchExplain(ctx, &http.Client{Timeout: statusTimeout}, o.Server, o.Request)
	if err != nil {
		return err
	}
	if o.Output == OutputJSON {
		return WriteStatusJSON(out, raw)
	}
	return WriteExplainTable(out, e)
}

// FetchExplain GETs /explain for r from the status API at server, and
// returns the answer decoded and as it came. The API's own error (a
// malformed header, a hostname no Host serves) is the error's message.
func FetchExplain(ctx context.Context, c *http.Client, server string, r explain.Request) (*explain.Explanation, []byte, error) {
	u, err := ExplainURL(server, r)
	if err != nil {
		return nil, nil, err
	}
	raw, err := getAPI(ctx, c, u, func(_ *http.Response, raw []byte) error {
		return fmt.Errorf("explain %s %s: %s", r.Method, r.URL, errorMessage(raw))
	})
	if err != nil {
		return nil, nil, err
	}
	var e explain.Explanation
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&e); err != nil || e.Answer == "" {
		return nil, nil, fmt.Errorf("GET %s: the answer is not crossmap's explanation JSON; is --server a crossmap status API?", u)
	}
	return &e, raw, nil
}

// WriteExplainTable writes the explanation for people: the request, the
// Host and the answer, each group that takes the request with its
// backends and dev routes, and every other Mapping with why it does not
// match.
func WriteExplainTable(out io.Writer, e *explain.Explanation) error {
	// Each table has a tabwriter of its own, so that the columns of one do
	// not widen another's.
	var buf bytes.Buffer
	table := func(write func(tw *tabwriter.Writer)) {
		tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
		write(tw)
		_ = tw.Flush()
	}
	r := e.Request
	target := fmt.Sprintf("%s %s://%s%s", r.Method, r.Scheme, r.Host, r.Path)
	if r.Query != "" {
		target += "?" + r.Query
	}
	var headers []string
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		for _, v := range r.Headers[k] {
			headers = append(headers, k+": "+v)
		}
	}
	if len(headers) > 0 {
		target += "  (" + strings.Join(headers, "; ") + ")"
	}
	fmt.Fprintf(&buf, "Request: %s\n", oneLine(target))
	fmt.Fprintf(&buf, "Host:    %s (hostname %s, cleartext: %s), installation %s\n", e.Host.Name, e.Host.Hostname, e.Host.Insecure, strings.Join(e.AmbassadorID, ", "))
	fmt.Fprintf(&buf, "Answer:  %s: %s\n", e.Answer, oneLine(e.Summary))
	for _, g := range e.Groups {
		fmt.Fprintf(&buf, "\nGroup of %s: %d%% of these requests (group %d of %d on the Host)\n", g.Name, g.Share, g.Position, g.Of)
		fmt.Fprintf(&buf, "  why: %s\n", oneLine(g.Why))
		if g.Route != "" {
			held := ""
			if g.Held {
				held = " (held: a problem keeps its last valid routes)"
			}
			fmt.Fprintf(&buf, "  route: %s, failover %s%s\n", g.Route, g.Failover, held)
		}
		if g.DevHeader != "" {
			fmt.Fprintf(&buf, "  a dev route, selected by the header %s\n", oneLine(g.DevHeader))
		}
		if g.Error != "" {
			fmt.Fprintf(&buf, "  Emissary rejects the group: %s\n", oneLine(g.Error))
		}
		table(func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "  MAPPING\tOWNER\tCLUSTER\tSERVICE\tSHARE\tHEALTHY\tTLS IDENTITY\tREASON")
			for _, b := range g.Backends {
				healthy := "unknown"
				if b.Healthy != nil {
					healthy = map[bool]string{true: "yes", false: "no"}[*b.Healthy]
				}
				tlsID := "-"
				if b.TLS != nil {
					tlsID = b.TLS.Context
					if b.TLS.Identity != "" {
						tlsID = b.TLS.Identity + " (" + b.TLS.Context + ")"
					}
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d%%\t%s\t%s\t%s\n", oneLine(b.Mapping), b.Owner, oneLine(b.Cluster), oneLine(b.Service), b.Share, healthy, oneLine(tlsID), oneLine(cmp.Or(b.Reason, "-")))
			}
		})
		for _, d := range g.DevRoutes {
			selected := ""
			if d.Selected {
				selected = " (this request)"
			}
			fmt.Fprintf(&buf, "  dev route: %s -> %s (%s), healthy %s%s\n", oneLine(d.Header), d.Cluster, d.Mapping, map[bool]string{true: "yes", false: "no"}[d.Healthy], selected)
		}
	}
	if e.Unrouted > 0 && e.Answer == explain.AnswerRouted {
		fmt.Fprintf(&buf, "\n%d%% of these requests match no route: Envoy answers 404.\n", e.Unrouted)
	}
	if len(e.NotMatched) > 0 {
		fmt.Fprintf(&buf, "\nNot matched (%d), in Emissary's route order:\n", len(e.NotMatched))
		table(func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "MAPPING\tREASON\tWHY")
			for _, c := range e.NotMatched {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", oneLine(c.Mapping), c.Reason, oneLine(c.Message))
			}
		})
	}
	_, err := out.Write(buf.Bytes())
	return err
}
