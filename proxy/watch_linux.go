package proxy

import "golang.org/x/sys/unix"

// tcpClosedByPeer reports whether the TCP connection on fd has received
// its peer's FIN (or is closed altogether): its state is no longer
// ESTABLISHED. Not a TCP socket, or unknown: false.
func tcpClosedByPeer(fd uintptr) bool {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false
	}
	switch info.State {
	case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_CLOSE, unix.BPF_TCP_LAST_ACK:
		return true
	}
	return false
}
