//go:build race

package proxy

// raceEnabled: the race detector allocates on its own; allocation counts mean nothing then.
const raceEnabled = true
