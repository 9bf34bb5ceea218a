// Package cli gives Parity's commands one way to read configuration: every
// flag may also come from an environment variable, a flag on the command line
// wins over the variable, and a bad value from either is an error that names
// where it came from.
package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// FlagSet is a flag.FlagSet whose flags have environment variables.
type FlagSet struct {
	*flag.FlagSet
	env map[string]string // flag name -> variable
}

// New returns an empty FlagSet for the named command.
func New(name string) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &FlagSet{FlagSet: fs, env: map[string]string{}}
}

// Env binds flag name to environment variable v.
func (f *FlagSet) Env(name, v string) {
	fl := f.Lookup(name)
	if fl == nil {
		panic("cli: no flag " + name) // a programming error, caught by every test run
	}
	fl.Usage += " (env " + v + ")"
	f.env[name] = v
}

// EnvNames returns every environment variable the flag set reads, by flag name.
func (f *FlagSet) EnvNames() map[string]string { return f.env }

// Parse parses args, then fills every flag not given on the command line from
// its environment variable, if set.
func (f *FlagSet) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", f.Name(), f.Arg(0))
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for name, v := range f.env {
		val, ok := os.LookupEnv(v)
		if !ok || set[name] {
			continue
		}
		if err := f.Set(name, val); err != nil {
			return fmt.Errorf("%s: environment variable %s: %w", f.Name(), v, err)
		}
	}
	return nil
}

// List splits a comma-separated value, dropping empty items.
func List(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Logger returns a text logger on stderr at the named level.
func Logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// DefaultDatabaseURL is the PostgreSQL the commands use when none is given:
// the local server, database "parity" (created if missing).
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/parity?sslmode=disable"
