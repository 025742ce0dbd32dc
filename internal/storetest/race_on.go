//go:build race

package storetest

// raceEnabled tells the suites that the race detector slows them down.
const raceEnabled = true
