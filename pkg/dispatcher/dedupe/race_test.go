//go:build race

package dedupe

// raceEnabled: the race detector changes allocation sizes, so memory per
// key is not asserted under it.
const raceEnabled = true
