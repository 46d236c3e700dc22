// Package hoststest holds the integration test of several tandems on the
// three namespace hosts that scripts/cluster.sh builds (`make
// cluster-demo`): host1 runs etcd, MariaDB node a and a tandem, host2 etcd,
// node b and a tandem, the witness etcd only. The test needs root; it fails
// (never skips) when it cannot build that topology.
//
// The test process stays in the machine's own network namespace and opens
// every socket inside the namespace of the host it plays: a dialer locks
// its goroutine to an OS thread, switches that thread into the host's
// network namespace (setns), creates the socket there and switches back. A
// socket belongs to the namespace it was created in, so the load clients
// of host1 reach host1's tandem on 10.x.y.11:3306 exactly as an app on
// that host would, and stay on host1's side of a partition.
//
// Environment: TANDEM_HOSTS_NS (namespace prefix, default hst),
// TANDEM_HOSTS_NET (default 10.78.0), TANDEM_HOSTS_DIR (default
// /tmp/tandem-hosts) select the rig, deliberately not scripts/cluster.sh's
// defaults; TANDEM_HOSTS_KEEP=1 keeps its data and logs after a passing
// run (a failing run always keeps them); TANDEM_ETCD_BIN as for
// scripts/etcd.sh.
package hoststest
