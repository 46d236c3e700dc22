package proxy

import "golang.org/x/sys/unix"

// tcpPeerClosed reports, from the TCP state of the connection on fd,
// whether its peer sent a FIN (fin) and whether the connection is closed
// altogether (closed: a reset). Not a TCP socket, or unknown: false, false.
func tcpPeerClosed(fd uintptr) (fin, closed bool) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false, false
	}
	switch info.State {
	case unix.BPF_TCP_CLOSE:
		return true, true
	case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_LAST_ACK:
		return true, false
	}
	return false, false
}
