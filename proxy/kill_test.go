package proxy

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// KILL by the id a moved session was greeted with reaches its new thread,
// unless that id is also a thread on the killer's node.
func TestKillByGreetingIDAfterMove(t *testing.T) {
	ss := startScriptedFacts(t, mysql.CLIENT_PROTOCOL_41)
	p := ss.s.p
	node := ss.s.be.node
	add := func(id uint32, s *session) {
		p.mu.Lock()
		s.id = id
		p.sessions[id] = s
		p.mu.Unlock()
	}
	// Greeted as 55 on some node, now thread 90 on the killer's node.
	moved := &session{p: p, greetID: 55, be: &backend{node: node, threadID: 90}}
	add(1001, moved)
	// Greeted as 66, now on another node: out of reach.
	away := &session{p: p, greetID: 66, be: &backend{node: &Node{Name: "other"}, threadID: 91}}
	add(1002, away)
	send := func(q string) {
		t.Helper()
		if _, err := ss.client.Write(packet(0, append([]byte{mysql.COM_QUERY}, q...))); err != nil {
			t.Fatal(err)
		}
	}
	send("KILL QUERY 55")
	nodeExpects(t, ss, append([]byte{mysql.COM_QUERY}, "KILL QUERY 90"...), mysql.SERVER_STATUS_AUTOCOMMIT)
	clientReadsOK(t, ss)
	send("KILL QUERY 66")
	readErrPacket(t, ss, erNoSuchThread, 1)
	// Thread 55 on the killer's node now belongs to another session: the
	// id is ambiguous, and nothing reaches the node.
	add(1003, &session{p: p, greetID: 55, be: &backend{node: node, threadID: 55}})
	send("KILL QUERY 55")
	readErrPacket(t, ss, erNoSuchThread, 1)
	send("KILL QUERY 90") // the moved session's current thread still works
	nodeExpects(t, ss, append([]byte{mysql.COM_QUERY}, "KILL QUERY 90"...), mysql.SERVER_STATUS_AUTOCOMMIT)
	clientReadsOK(t, ss)
}
