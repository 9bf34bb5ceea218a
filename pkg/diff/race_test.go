//go:build race

package diff

func init() { raceEnabled = true }
