package apikey

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that accepted tokens re-serialize
// byte-for-byte, that rejected ones return exactly ErrMalformed, and that
// freshly generated keys always round-trip. The committed seed corpus lives
// in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(Generate().Token)
	f.Add("")
	f.Add(Prefix)
	f.Add("dotdo_")
	f.Add(strings.Repeat("0", TokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			if k != (Key{}) {
				t.Fatal("non-zero key returned with error")
			}
		} else {
			if k.Token != s {
				t.Fatal("accepted token not preserved in Key.Token")
			}
			re, err := FromParts(k.ID, k.Secret)
			if err != nil {
				t.Fatalf("FromParts of accepted token: %v", err)
			}
			if re != k {
				t.Fatal("accepted token does not re-serialize identically")
			}
			if strings.Contains(k.String(), k.Secret) {
				t.Fatal("String leaks the secret")
			}
		}

		g := Generate()
		p, err := Parse(g.Token)
		if err != nil || p != g {
			t.Fatalf("Parse(Generate().Token) = %v, %v", p, err)
		}
	})
}
