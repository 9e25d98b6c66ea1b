package controller

import "sync"

// GatewayHealth holds the latest verdict of each Link's gateway, as the
// import role's probes and checks reach it, for the route role of the same
// process (nil holds nothing). Route weights then follow a probe directly: not the Link's
// status write, the watch event it makes and the route reconcile after
// it, which a broken local API server or a slow cache would delay, and
// which used to arrive after the mirrors' endpoints had turned not ready,
// so that the route gave the wrong reason (issue 13). A route role
// without an import role beside it (another process) reads the Link's
// GatewayAlive condition instead. It is safe for concurrent use.
type GatewayHealth struct {
	mu     sync.Mutex
	alive  map[string]bool
	notify []func()
}

// Set records the verdict on the gateway of the Link key (namespace/name)
// and, when it changed, tells every subscriber.
func (g *GatewayHealth) Set(key string, alive bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.alive == nil {
		g.alive = map[string]bool{}
	}
	old, known := g.alive[key]
	g.alive[key] = alive
	notify := g.notify
	g.mu.Unlock()
	if known && old == alive {
		return
	}
	for _, f := range notify {
		f()
	}
}

// Alive returns the verdict on the gateway of the Link key, and whether
// there is one yet (a new prober has none until its first round).
func (g *GatewayHealth) Alive(key string) (alive, known bool) {
	if g == nil {
		return false, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	alive, known = g.alive[key]
	return alive, known
}

// Forget drops the verdict on the Link key: the Link is gone, or its
// gateway is no longer judged here.
func (g *GatewayHealth) Forget(key string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	_, known := g.alive[key]
	delete(g.alive, key)
	notify := g.notify
	g.mu.Unlock()
	if !known {
		return
	}
	for _, f := range notify {
		f()
	}
}

// Subscribe has f called whenever a verdict changes; f must return
// promptly.
func (g *GatewayHealth) Subscribe(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.notify = append(g.notify, f)
}
