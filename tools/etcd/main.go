// Command etcd is etcd's own server, built from a pinned release so that
// tandem's tests and install step do not depend on Debian's etcd-server
// (3.4.23, without the lease fixes of 3.4.31 and 3.4.38). It lives in its
// own module so that the main module never depends on the server.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
