package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/parityhq/parity/internal/auth"
	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/store"
)

// token runs `parityctl token create|revoke|list`: 0 on success, 1 on any
// failure.
func token(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "parityctl: token needs a command\n\n"+usage)
		return 1
	}
	var err error
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stderr, usage)
		return 0
	case "create":
		err = tokenCreate(args[1:], stdout, stderr)
	case "revoke":
		err = tokenRevoke(args[1:], stderr)
	case "list":
		err = tokenList(args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown token command %q\n\n%s", args[0], usage)
	}
	if errors.Is(err, errHelped) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "parityctl:", err)
		return 1
	}
	return 0
}

// errHelped says a command printed its help as asked: exit 0.
var errHelped = errors.New("help printed")

// parseTokenFlags parses a token command's flags (usage on stderr).
func parseTokenFlags(fs *cli.FlagSet, args []string, stderr io.Writer, synopsis string) error {
	help, err := parseFlags(fs, args, stderr, synopsis)
	if help {
		return errHelped
	}
	return err
}

// tokenFlags declares the flags every token command has and returns a
// function that opens the token table with them.
func tokenFlags(name string) (*cli.FlagSet, func(context.Context) (*auth.Tokens, func(), error)) {
	fs := cli.New("parityctl token " + name)
	dbURL := fs.String("database-url", cli.DefaultDatabaseURL, "the collector's PostgreSQL; the database is created and migrated if needed")
	fs.Env("database-url", "DATABASE_URL")
	open := func(ctx context.Context) (*auth.Tokens, func(), error) {
		st, err := store.Open(ctx, *dbURL, store.Options{MaxConns: 2}) // errors never contain the password
		if err != nil {
			return nil, nil, err
		}
		// No cache: one command, and a revocation must be seen at once.
		tk, err := auth.Open(ctx, st.Pool(), auth.Options{CacheTTL: -1})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return tk, st.Close, nil
	}
	return fs, open
}

func tokenCreate(args []string, stdout, stderr io.Writer) error {
	fs, open := tokenFlags("create")
	name := fs.String("name", "", "the token's name: who or what holds it, e.g. ci-gate (required)")
	role := fs.String("role", "", "viewer (read), operator (read and change rules and gates) or ingest (POST /api/v1/pairs only) (required)")
	if err := parseTokenFlags(fs, args, stderr, "parityctl token create --name NAME --role viewer|operator|ingest"); err != nil {
		return err
	}
	if *name == "" || *role == "" {
		return errors.New("--name and --role are required")
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return err
	}
	if !auth.ValidName(*name) {
		return fmt.Errorf("--name %q: use 1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit", *name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tk, closeDB, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	tok, err := tk.Create(ctx, *name, r)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "parityctl: created %s token %q. It is shown only this once: store it now.\n", r, *name)
	return nil
}

func tokenRevoke(args []string, stderr io.Writer) error {
	fs, open := tokenFlags("revoke")
	name := fs.String("name", "", "the token to revoke (required)")
	if err := parseTokenFlags(fs, args, stderr, "parityctl token revoke --name NAME"); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tk, closeDB, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := tk.Revoke(ctx, *name); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "parityctl: revoked token %q; running collectors refuse it within %v (their token cache, by default).\n", *name, auth.DefaultCacheTTL)
	return nil
}

func tokenList(args []string, stdout, stderr io.Writer) error {
	fs, open := tokenFlags("list")
	all := fs.Bool("all", false, "also list revoked tokens")
	if err := parseTokenFlags(fs, args, stderr, "parityctl token list [--all]"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tk, closeDB, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	list, err := tk.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tROLE\tCREATED\tLAST USED\tREVOKED")
	for _, t := range list {
		if !t.Active() && !*all {
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, stamp(t.CreatedAt), stamp(t.LastUsedAt), stamp(t.RevokedAt))
	}
	return w.Flush()
}

// stamp formats a time to the minute, in UTC; "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
