//go:build !unix

package alert

import "os/exec"

// killGroup leaves cmd as it is: without process groups, cancelling kills
// the program only.
func killGroup(*exec.Cmd) {}
