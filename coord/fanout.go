package coord

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Every request on a tandem's path to acting (renewals, reads and saves of
// the decision, the election, acknowledgements, the barrier's reads) goes
// to every etcd member at once, each over its own connection, and the first
// answer wins. The client library's shared connection balances requests
// over the members in turn: one in three went to a member that was cut off
// and waited out its whole timeout (RequestTimeout, 1 s) before the caller
// could try again, and those waits added up to more than a second of a
// failover (measured in TestHostsFaults).
//
// Sending the same request to every member is safe for reads (any member's
// linearizable read is as good as another's) and for the writes coord
// makes, each of which is a transaction whose condition lets at most one
// copy take effect: a save compares the decision's ModRevision, a campaign
// and a registration create a key only if it does not exist, an
// acknowledgement compares the member key's ModRevision. A copy that
// arrives after another took effect fails its condition, and the caller
// recognises its own write in the answer (see saveTxn, Campaign, register,
// Ack). Copies still running when the first answer arrives are cancelled;
// one may still be applied, and its condition then fails.

// first sends call to every member at once (one client each; just the
// shared client when there is one endpoint) and returns the first answer
// without an error, cancelling the others. If every call fails it returns
// one of their errors, preferring what a member said (no leader, lease not
// found) over a timeout. ctx bounds every call.
func first[T any](ctx context.Context, s *Session, call func(context.Context, *clientv3.Client) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	results := make(chan result, len(s.perMember))
	for _, c := range s.perMember {
		go func() {
			v, err := call(ctx, c)
			results <- result{v, err}
		}()
	}
	var err error
	for range s.perMember {
		r := <-results
		if r.err == nil {
			return r.v, nil
		}
		if err == nil || !fromMember(err) && fromMember(r.err) {
			err = r.err
		}
	}
	var zero T
	return zero, err
}

// fromMember: err is an answer from an etcd member (no leader, lease not
// found, ...), not a timeout or a broken connection.
func fromMember(err error) bool {
	var ee rpctypes.EtcdError
	return errors.As(err, &ee)
}
