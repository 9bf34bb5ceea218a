package controller

import (
	"errors"
	"fmt"
)

// The kinds of [Error]. A caller that maps them to answers (the HTTP layer
// to status codes) tests them with [errors.Is].
var (
	// ErrInvalid: the request itself is wrong (a plan that does not
	// validate, a missing reason); asking again unchanged cannot succeed.
	ErrInvalid = errors.New("controller: invalid request")
	// ErrNotFound: there is no such rollout, or no such action.
	ErrNotFound = errors.New("controller: not found")
	// ErrRefused: the rollout's rules forbid the change in its current
	// state (a step out of range, an unsafe transition, a plan that would
	// change an applied step).
	ErrRefused = errors.New("controller: refused")
	// ErrConflict: the rollout changed between reading and writing it
	// (another operator or controller moved it); read it again and retry.
	ErrConflict = errors.New("controller: changed meanwhile")
)

// Error is a change the controller did not make, and why. Kind is one of
// ErrInvalid, ErrNotFound, ErrRefused or ErrConflict; Err says why, for
// people. errors.Is matches both.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string   { return e.Kind.Error() + ": " + e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// newError returns an [Error] of kind, saying what format says.
func newError(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}
