package apikey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateShapeAndRoundTrip(t *testing.T) {
	re := regexp.MustCompile("^" + Pattern + "$")
	seen := map[string]bool{}
	for range 200 {
		k := Generate()
		if len(k.Token) != TokenLen || TokenLen != 68 {
			t.Fatalf("token length %d, want %d (=68)", len(k.Token), TokenLen)
		}
		if !re.MatchString(k.Token) {
			t.Fatalf("generated token does not match Pattern")
		}
		if !strings.HasPrefix(k.Token, Prefix+k.ID+"_"+k.Secret) {
			t.Fatalf("token does not embed id and secret")
		}
		p, err := Parse(k.Token)
		if err != nil {
			t.Fatalf("Parse(Generate()) = %v", err)
		}
		if p != k {
			t.Fatalf("round trip mismatch")
		}
		if seen[k.ID] || seen[k.Secret] {
			t.Fatalf("duplicate random value")
		}
		seen[k.ID], seen[k.Secret] = true, true
	}
}

func TestRandomBase62Distribution(t *testing.T) {
	// Cheap sanity check that every alphabet character shows up and that
	// none is wildly over-represented (rejection sampling keeps it uniform).
	counts := map[byte]int{}
	const n = 62 * 500
	s := randomBase62(n)
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	if len(counts) != 62 {
		t.Fatalf("saw %d distinct characters, want 62", len(counts))
	}
	for c, got := range counts {
		if got < 350 || got > 650 {
			t.Errorf("character %q drawn %d times, expected about 500", c, got)
		}
	}
}

func TestParseRejects(t *testing.T) {
	valid := Generate().Token
	flip := func(i int) string {
		b := []byte(valid)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":             "",
		"prefix only":       Prefix,
		"truncated":         valid[:TokenLen-1],
		"extended":          valid + "0",
		"wrong prefix":      "dotdx_" + valid[len(Prefix):],
		"upper prefix":      "DOTDO_" + valid[len(Prefix):],
		"missing separator": valid[:18] + "0" + valid[19:],
		"bad id char":       valid[:7] + "-" + valid[8:],
		"bad secret char":   valid[:30] + "+" + valid[31:],
		"bad checksum char": valid[:TokenLen-1] + "/",
		"checksum flipped":  flip(TokenLen - 1),
		"id flipped":        flip(10),
		"secret flipped":    flip(40),
		"unicode":           valid[:TokenLen-2] + "é",
		"whitespace":        " " + valid[:TokenLen-1],
		"bearer":            "Bearer " + valid,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := Parse(in)
			if err != ErrMalformed {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
			if k != (Key{}) {
				t.Fatalf("Parse returned a non-zero key on error")
			}
		})
	}
}

func TestChecksumCanonical(t *testing.T) {
	// A checksum with the right numeric value but a different spelling can
	// not exist (fixed width, single alphabet), and the max uint32 fits.
	got := string(appendChecksum(nil, ^uint32(0)))
	if got != "4gfFC3" {
		t.Fatalf("checksum of MaxUint32 = %q, want 4gfFC3", got)
	}
	if got := string(appendChecksum(nil, 0)); got != "000000" {
		t.Fatalf("checksum of 0 = %q", got)
	}
}

func TestCRC32String(t *testing.T) {
	for _, s := range []string{"", "a", "dotdo_", Generate().Token, strings.Repeat("xyz", 100)} {
		if got, want := crc32String(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crc32String(%q) = %08x, want %08x", s, got, want)
		}
	}
}

func TestFromParts(t *testing.T) {
	k := Generate()
	k2, err := FromParts(k.ID, k.Secret)
	if err != nil || k2 != k {
		t.Fatalf("FromParts = %v, %v", k2, err)
	}
	for _, bad := range [][2]string{{"", k.Secret}, {k.ID, ""}, {k.ID + "x", k.Secret}, {"_" + k.ID[1:], k.Secret}} {
		if _, err := FromParts(bad[0], bad[1]); err != ErrMalformed {
			t.Errorf("FromParts(%q, ...) = %v, want ErrMalformed", bad[0], err)
		}
	}
	if !ValidID(k.ID) || ValidID(k.ID[1:]) || ValidID("dotdo_abcdef") {
		t.Fatal("ValidID wrong")
	}
}

func TestRedaction(t *testing.T) {
	k := Generate()
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	logger.Info("created", "key", k)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("created", "key", k)
	js, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		k.String(), k.GoString(), fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", &k), fmt.Sprintf("%+v", struct{ K Key }{k}), fmt.Sprintf("%#v", []Key{k}),
		logBuf.String(), string(js), fmt.Errorf("wrapped: %v", k).Error(),
	}
	for _, out := range outputs {
		if strings.Contains(out, k.Secret) || strings.Contains(out, k.Token) {
			t.Fatalf("secret leaked in %q", out)
		}
		if !strings.Contains(out, k.ID) {
			t.Fatalf("id missing from %q", out)
		}
	}
}

func TestHashSecret(t *testing.T) {
	k := Generate()
	h := HashSecret(k.Secret)
	if len(h) != 32 {
		t.Fatalf("hash length %d", len(h))
	}
	if !VerifySecret(k.Secret, h, nil) || VerifySecret(k.Secret+"x", h, nil) {
		t.Fatal("VerifySecret without pepper wrong")
	}
	if !bytes.Equal(HashSecretPeppered(nil, k.Secret), h) {
		t.Fatal("empty pepper must equal plain hash")
	}
	p := HashSecretPeppered([]byte("pepper"), k.Secret)
	if bytes.Equal(p, h) || !VerifySecret(k.Secret, p, []byte("pepper")) || VerifySecret(k.Secret, p, []byte("other")) {
		t.Fatal("peppered hash wrong")
	}
	if EqualHash(nil, nil) || EqualHash(h, h[:31]) || !EqualHash(h, bytes.Clone(h)) {
		t.Fatal("EqualHash wrong")
	}
}

func BenchmarkParse(b *testing.B) {
	tok := Generate().Token
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Generate()
	}
}
