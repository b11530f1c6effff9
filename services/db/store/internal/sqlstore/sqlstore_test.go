package sqlstore

import (
	"errors"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:        `SELECT 1`,
		`a = ? AND b = ?`: `a = $1 AND b = $2`,
		`x = '?' AND y = ? AND z = 'it''s ?' OR ?`: `x = '?' AND y = $1 AND z = 'it''s ?' OR $2`,
		`"we?ird" = ? -- why?` + "\n" + `AND ?`:    `"we?ird" = $1 -- why?` + "\n" + `AND $2`,
		`unterminated '? `:                         `unterminated '? `,
	} {
		if got := Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPageToken(t *testing.T) {
	fp := fingerprint("a", "b")
	if fp == fingerprint("ab", "") {
		t.Fatal("fingerprint is ambiguous")
	}
	tok := encodeToken(tokenDeployments, fp, 42)
	if seq, err := decodeToken(tok, tokenDeployments, fp); err != nil || seq != 42 {
		t.Fatalf("decodeToken = %d, %v", seq, err)
	}
	for _, tc := range []struct {
		tok  string
		kind byte
		fp   uint32
	}{
		{tok, tokenAudit, fp},
		{tok, tokenDeployments, fp + 1},
		{tok[:len(tok)-1], tokenDeployments, fp},
		{"!!!", tokenDeployments, fp},
		{encodeToken(tokenDeployments, fp, 0), tokenDeployments, fp},
	} {
		if _, err := decodeToken(tc.tok, tc.kind, tc.fp); !errors.Is(err, errkind.Invalid) {
			t.Errorf("decodeToken(%q) = %v, want errkind.Invalid", tc.tok, err)
		}
	}
	if seq, err := decodeToken("", tokenAudit, 0); seq != 0 || err != nil {
		t.Fatalf("empty token: %d, %v", seq, err)
	}
}
