// Command etcd is the upstream etcd server, built from the module proxy so
// that envtest's kube-apiserver has a real store without a download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
