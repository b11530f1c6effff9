package errkind_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
)

func TestOf(t *testing.T) {
	sentinel := errkind.New(errkind.Conflict, "lease lost")
	for _, c := range []struct {
		name string
		err  error
		want errkind.Kind
	}{
		{"nil", nil, errkind.Other},
		{"plain", errors.New("disk full"), errkind.Other},
		{"context", fmt.Errorf("wait: %w", context.Canceled), errkind.Other},
		{"bare kind", errkind.NotFound, errkind.NotFound},
		{"wrapped kind", fmt.Errorf("deployment %q: %w", "d1", errkind.NotFound), errkind.NotFound},
		{"sentinel", sentinel, errkind.Conflict},
		{"wrapped sentinel", fmt.Errorf("deploy: %w", sentinel), errkind.Conflict},
		{"Errorf", errkind.Errorf(errkind.Invalid, "field %q", "name"), errkind.Invalid},
		{"outer kind wins", errkind.Errorf(errkind.Unavailable, "db: %w", errkind.NotFound), errkind.Unavailable},
		{"Errorf Other keeps the inner kind", errkind.Errorf(errkind.Other, "db: %w", errkind.NotFound), errkind.NotFound},
		{"joined: first wins", errors.Join(errkind.Exists, errkind.Invalid), errkind.Exists},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := errkind.Of(c.err); got != c.want {
				t.Fatalf("Of(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	a := errkind.New(errkind.Unavailable, "audit log unavailable")
	b := errkind.New(errkind.Unavailable, "audit log unavailable")
	wrapped := fmt.Errorf("deploy d1: %w", a)
	if !errors.Is(wrapped, a) || errors.Is(wrapped, b) {
		t.Fatal("sentinels of the same kind and message are not told apart")
	}
	if !errors.Is(wrapped, errkind.Unavailable) || errors.Is(wrapped, errkind.NotFound) {
		t.Fatal("a sentinel's kind is not found with errors.Is")
	}
	if wrapped.Error() != "deploy d1: audit log unavailable" {
		t.Fatalf("message %q: the kind must not be added to it", wrapped.Error())
	}
}

func TestErrorfWraps(t *testing.T) {
	cause := errors.New("connection refused")
	err := errkind.Errorf(errkind.Unavailable, "db: %w", cause)
	if !errors.Is(err, cause) || err.Error() != "db: connection refused" {
		t.Fatalf("Errorf = %q, wrapping cause: %v", err, errors.Is(err, cause))
	}
}

func TestKindsHaveNames(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range errkind.Kinds() {
		s := k.String()
		if s == "" || seen[s] || s == errkind.Other.String() {
			t.Fatalf("kind %d has name %q (duplicate or empty)", uint8(k), s)
		}
		seen[s] = true
	}
	if got := errkind.Kind(200).String(); got != "kind(200)" {
		t.Fatalf("unknown kind: %q", got)
	}
}
