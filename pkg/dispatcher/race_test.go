//go:build race

package dispatcher

// raceEnabled: the race detector slows everything several times, so
// throughput targets are not asserted under it.
const raceEnabled = true
