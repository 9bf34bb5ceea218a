package secret_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/parityhq/parity/internal/secret"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		value string
		st    secret.Strength
		want  string // in the error; "" for accepted
	}{
		{"the shipped session secret", "CHANGE-ME-session-secret-of-at-least-32-bytes", secret.SigningKey, `placeholder (it contains "changeme")`},
		{"the shipped ingest token", "CHANGE-ME-ingest-token-placeholder", secret.Token, "placeholder"},
		{"placeholder in other case", "change_me_please_0f3a9c2e7b1d4a6f", secret.Token, "placeholder"},
		{"replace me", "REPLACE-ME-9f8e7d6c5b4a39281706", secret.Token, "placeholder"},
		{"your secret here", "your-secret-here-8c1f9b2a7e6d3c40", secret.SigningKey, "placeholder"},
		{"password", "Password1234567890Password0987654321", secret.SigningKey, `contains the word "password"`},
		{"example", "example-token-9f8e7d6c5b4a", secret.Token, `contains the word "example"`},
		{"too short", "f3a9c2e7b1d4", secret.Token, "has 12 bytes, want at least 16"},
		{"short for signing", "f3a9c2e7b1d4a6f08c1f9b2a7e6d3c4", secret.SigningKey, "has 31 bytes, want at least 32"},
		{"one character", strings.Repeat("a", 64), secret.SigningKey, "repeats a sequence of 1 characters"},
		{"repeated word", strings.Repeat("k3y!", 10), secret.SigningKey, "repeats a sequence of 4 characters"},
		{"counting", "0123456789abcdefghijklmnopqrstuvwxyz", secret.SigningKey, "consecutive characters"},
		{"counting down", "zyxwvutsrqponmlk", secret.Token, "consecutive characters"},
		{"two characters", "abbaabababbbabaaabbabbbaababbabaabababbbaaab", secret.SigningKey, "too little entropy"},
		{"few characters", "1211121311121113121112", secret.Token, "too little entropy"},
		{"a test token", "flag-viewer-token-0123456789", secret.Token, ""},
		{"openssl rand -hex 32", "5c0d0a8f1e9b47c2a6d3f8e1b0c7a4925e6f3d8c1b0a7e4f29c6d3b8a1f0e7c4", secret.SigningKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := secret.Check(tt.value, tt.st)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			if err == nil || !errors.Is(err, secret.ErrWeak) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check = %v, want ErrWeak saying %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "make one with: "+tt.st.Make) {
				t.Errorf("Check = %v, want it to say how to make a good one", err)
			}
			if strings.Contains(err.Error(), tt.value) {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
}

// Random values of the least length each strength allows pass: the checks
// refuse guessable values, not short random ones.
func TestRandomValuesPass(t *testing.T) {
	for range 2000 {
		b := make([]byte, 24)
		rand.Read(b)
		for _, c := range []struct {
			v  string
			st secret.Strength
		}{
			{hex.EncodeToString(b[:8]), secret.Token},
			{hex.EncodeToString(b[:16]), secret.SigningKey},
			{base64.RawURLEncoding.EncodeToString(b)[:32], secret.SigningKey},
		} {
			if err := secret.Check(c.v, c.st); err != nil {
				t.Fatalf("random %q: %v", c.v, err)
			}
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		weak bool
	}{
		{"postgres://parity:CHANGE-ME-postgres-password@postgres:5432/parity?sslmode=disable", true},
		{"postgres://parity:changeme@db/parity", true},
		{"postgres://parity:s3cret-password@db/parity", false},
		{"postgres://parity:9f8e7d6c5b4a3928@db/parity", false},
		{"postgres://postgres@127.0.0.1:5432/parity", false},
		{"host=127.0.0.1 user=postgres", false},
	} {
		err := secret.CheckURL(tt.url)
		if (err != nil) != tt.weak || err != nil && (strings.Contains(err.Error(), "CHANGE-ME") || !errors.Is(err, secret.ErrWeak)) {
			t.Errorf("CheckURL(%q) = %v, want weak %v (and no password in the error)", tt.url, err, tt.weak)
		}
	}
}
