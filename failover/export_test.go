package failover

// SetStepHook makes m call hook between the steps of a failover or a
// switchover ("journaled", "fenced", "replica_stopped", "caught_up",
// "saved", "switchover_drained", "switchover_fenced", "switchover_saved"),
// from the state machine's goroutine, before Run starts. A hook that calls
// runtime.Goexit stops the state machine there as a crash of tandem would.
func SetStepHook(m *Manager, hook func(step string)) { m.step = hook }
