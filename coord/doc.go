// Package coord lets several tandems agree through etcd: each tandem holds
// an etcd lease that it renews itself and from which it computes how long it
// may still act (self-fencing), registers itself as a member, campaigns to be
// the one coordinator, stores the failover decision with compare-and-set
// transactions, and waits for every member to acknowledge a new epoch before
// the coordinator makes a new node writable (a barrier).
//
// All agreement comes from etcd; coord never decides anything by itself.
// Every request on the way to acting goes to every etcd member at once and
// the first answer wins (fanout.go), so a member that is cut off or hung
// never costs a timeout.
// It knows nothing of failover's types: the decision is opaque JSON whose
// epoch the caller keeps.
//
// # The contract for a caller (package failover)
//
// Every tandem:
//   - Open a Session at start; route nothing until Valid() and a decision
//     read with Load (linearizable) says where to route.
//   - Before each routing change, and continuously while routing, require
//     Valid(); when it turns false, hold or refuse traffic (self-fencing)
//     until it is true again AND a fresh Load was applied. Never act on a
//     decision held in memory from before.
//   - A loaded decision is good only under the lease it was loaded with
//     (Status().Lease): a different lease means the old one expired, so a
//     barrier may have passed without this tandem. Reload before routing,
//     even if no moment of Valid() == false was observed in between
//     (EventLeaseLost reports it too).
//   - After adopting the decision of epoch N (routing by it), Ack(N).
//
// The coordinator (Campaign returned; IsCoordinator checked before every
// step), to move the active node from X to Y:
//  1. fence X, then Save a decision "active Y, epoch N+1" over the
//     ModRevision it loaded (ErrConflict: reload and rethink;
//     ErrNotCoordinator: stop at once);
//  2. WaitAcked(N+1): every registered tandem routes by N+1, or its lease
//     has certainly expired (its key is gone), so it routes nothing;
//  3. only then make Y writable.
//
// A tandem that joins during step 2 registers, then Loads, and so sees
// N+1: the decision is saved before the barrier starts.
//
// # Why validity is safe
//
// Valid() holds until (send time of the last successful renewal) + TTL −
// Margin. etcd expires a lease no earlier than TTL after its leader received
// the last renewal, which is after the send; a new etcd leader extends every
// lease. So a tandem has stopped acting before etcd deletes its member and
// coordinator keys, and another tandem can win or pass a barrier only after
// that deletion.
package coord
