package config

import (
	"flag"
	"io"
	"testing"
	"time"
)

// TestEnvValues: a variable sets its flag's default, a flag wins over it,
// and a variable that does not parse is an error, not the default.
func TestEnvValues(t *testing.T) {
	t.Setenv("DOTDO_TEST_TTL", "30s")
	t.Setenv("DOTDO_TEST_BYTES", "20MB")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ttl time.Duration
	var n int64
	Duration(fs, &ttl, "ttl", "DOTDO_TEST_TTL", time.Second, "")
	Int64(fs, &n, "bytes", "DOTDO_TEST_BYTES", 10, "")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if ttl != 30*time.Second {
		t.Fatalf("ttl = %v, want 30s from the environment", ttl)
	}
	if err := Check(fs); err == nil {
		t.Fatal("DOTDO_TEST_BYTES=20MB was accepted")
	}
	fs2 := flag.NewFlagSet("t2", flag.ContinueOnError)
	Duration(fs2, &ttl, "ttl", "DOTDO_TEST_TTL", time.Second, "")
	if err := fs2.Parse([]string{"-ttl", "5s"}); err != nil || ttl != 5*time.Second || Check(fs2) != nil {
		t.Fatalf("flag over env: %v, %v", ttl, err)
	}
}
