package demo

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/explain"
)

// explain asks west's status API where west's edge sends a request, as
// `crossmap explain` does, and checks the answer: the split, with the dev
// route named, and with the dev header the dev cluster alone.
func (d *demo) explain(ctx context.Context) error {
	c := &http.Client{Timeout: 3 * time.Second}
	server := "http://" + d.statusAddr
	url := "http://" + d.edgeAddr + "/podinfo/"
	d.say("  $ crossmap explain GET %s --server %s", url, server)
	var e *explain.Explanation
	if err := d.wait(ctx, "explain", func(ctx context.Context) error {
		var err error
		if e, _, err = cli.FetchExplain(ctx, c, server, explain.Request{Method: http.MethodGet, URL: url}); err != nil {
			return err
		}
		shares := map[string]int{}
		for _, g := range e.Groups {
			for _, b := range g.Backends {
				shares[b.Cluster] += b.Share
			}
		}
		if shares["west"] != 50 || shares["east"] != 50 || len(e.Groups) != 1 || len(e.Groups[0].DevRoutes) != 1 {
			return fmt.Errorf("explained %v (%s)", shares, e.Summary)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := cli.WriteExplainTable(d.o.Out, e); err != nil {
		return err
	}
	header := devHeader + ": " + devCluster
	dev, _, err := cli.FetchExplain(ctx, c, server, explain.Request{Method: http.MethodGet, URL: url, Headers: []string{header}})
	if err != nil {
		return err
	}
	if len(dev.Groups) != 1 || len(dev.Groups[0].Backends) != 1 || dev.Groups[0].Backends[0].Cluster != devCluster || dev.Groups[0].Share != 100 {
		return fmt.Errorf("with %s explained %s", header, dev.Summary)
	}
	d.say("\n  $ crossmap explain GET %s -H '%s' --server %s\n  %s", url, header, server, dev.Summary)
	return nil
}
