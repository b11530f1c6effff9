// Package apikey implements the dotdo API key token format: generation,
// offline validation, hashing for storage and redaction in logs.
//
// # Grammar
//
// A token is exactly 68 ASCII bytes (ABNF, RFC 5234, case-sensitive):
//
//	token    = %s"dotdo_" key-id "_" secret checksum
//	key-id   = 12base62        ; public identifier, safe to log
//	secret   = 43base62        ; crypto/rand, uniformly distributed
//	checksum = 6base62         ; CRC-32 of everything before it
//	base62   = DIGIT / %x41-5A / %x61-7A   ; 0-9 A-Z a-z
//
// For example (not a real key):
//
//	dotdo_0a1B2c3D4e5F_<43 secret characters><6 checksum characters>
//
// The checksum is the CRC-32 (IEEE polynomial) of the first 62 bytes of the
// token ("dotdo_", the key id, "_" and the secret), written as an unsigned
// base62 number with the alphabet 0-9A-Za-z (in that order, most significant
// digit first) and left-padded with '0' to exactly 6 digits. Only this
// canonical encoding is accepted, so every accepted token re-serializes
// byte-for-byte.
//
// The key id is 12 characters (about 71 bits) drawn with crypto/rand; it is
// the database primary key and is not secret. The secret is 43 characters
// drawn uniformly from the 62-letter alphabet with crypto/rand (rejection
// sampling), i.e. 43·log2(62) ≈ 256.03 bits of entropy, at least as much as
// 32 random bytes.
//
// The fixed prefix and the checksum let [Parse] reject typos and garbage
// without a database lookup, and let secret scanners (GitHub secret
// scanning, gitleaks, trufflehog) find leaked keys with [Pattern] and verify
// the checksum to avoid false positives. Underscores are word characters, so
// double-clicking a token selects all of it.
package apikey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
)

// Format constants. Together they define the grammar in the package doc.
const (
	// Prefix is the fixed, recognizable start of every token.
	Prefix = "dotdo_"
	// IDLen is the length of the public key id.
	IDLen = 12
	// SecretLen is the length of the secret part.
	SecretLen = 43
	// ChecksumLen is the length of the base62 CRC-32 checksum.
	ChecksumLen = 6
	// TokenLen is the total length of a token in bytes.
	TokenLen = len(Prefix) + IDLen + 1 + SecretLen + ChecksumLen

	// Pattern is a regular expression (RE2 / PCRE compatible) that matches
	// tokens in free text, for secret scanners. Matches should additionally
	// be confirmed with [Parse], which verifies the checksum.
	Pattern = `\bdotdo_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}\b`
)

// alphabet is the base62 alphabet in ASCII order.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// bodyLen is the length of the checksummed part of a token.
const bodyLen = TokenLen - ChecksumLen

// ErrMalformed is returned by [Parse] and [FromParts] for any string that is
// not a well-formed token: wrong length, prefix, separator or alphabet, or a
// checksum mismatch. The error never includes the input.
var ErrMalformed = errors.New("malformed API key")

// Key is a parsed or freshly generated API key.
//
// Key redacts itself: String, GoString, Format (every fmt verb), LogValue and
// MarshalJSON show only the key id, never Secret or Token. Read the Token
// field explicitly when it must be shown to its owner (once, at creation).
type Key struct {
	// ID is the public key id (12 base62 characters).
	ID string
	// Secret is the secret part (43 base62 characters). Never log it.
	Secret string
	// Token is the complete token handed to the client. Never log it.
	Token string
}

// redacted is the representation used by every formatting method of Key.
func (k Key) redacted() string {
	if k.ID == "" {
		return Prefix + "<empty>"
	}
	return Prefix + k.ID + "_<redacted>"
}

// String returns the key id with the secret redacted, e.g.
// "dotdo_0a1B2c3D4e5F_<redacted>".
func (k Key) String() string { return k.redacted() }

// GoString implements fmt.GoStringer with the secret redacted.
func (k Key) GoString() string { return fmt.Sprintf("apikey.Key{ID:%q, Secret:<redacted>}", k.ID) }

// Format implements fmt.Formatter so that no verb (%v, %+v, %#v, %s, %d, %x,
// ...) can print the secret.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, k.GoString())
		return
	}
	_, _ = fmt.Fprint(f, k.redacted())
}

// LogValue implements slog.LogValuer: only the key id is logged.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID))
}

// MarshalJSON encodes only the key id, so that marshaling a Key by accident
// does not leak it.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID string `json:"id"`
	}{k.ID})
}

// Generate returns a new random key. It uses crypto/rand, which never fails
// on supported platforms (Go 1.24+ crashes the program rather than return
// predictable bytes).
func Generate() Key {
	id := randomBase62(IDLen)
	secret := randomBase62(SecretLen)
	k, err := FromParts(id, secret)
	if err != nil {
		panic("apikey: generated an invalid key: " + err.Error()) // unreachable
	}
	return k
}

// FromParts assembles a Key (including its Token and checksum) from an id and
// a secret. It returns ErrMalformed if either part does not match the grammar.
// For every token t accepted by Parse, FromParts(Parse(t)) yields t again.
func FromParts(id, secret string) (Key, error) {
	if len(id) != IDLen || !isBase62(id) || len(secret) != SecretLen || !isBase62(secret) {
		return Key{}, ErrMalformed
	}
	buf := make([]byte, 0, TokenLen)
	buf = append(buf, Prefix...)
	buf = append(buf, id...)
	buf = append(buf, '_')
	buf = append(buf, secret...)
	buf = appendChecksum(buf, crc32.ChecksumIEEE(buf))
	return Key{ID: id, Secret: secret, Token: string(buf)}, nil
}

// Parse validates token against the grammar (length, prefix, alphabet,
// separator and checksum) without any I/O. Every failure returns exactly
// ErrMalformed; the input is never echoed.
func Parse(token string) (Key, error) {
	if len(token) != TokenLen || token[:len(Prefix)] != Prefix {
		return Key{}, ErrMalformed
	}
	const idStart = len(Prefix)
	const sep = idStart + IDLen
	if token[sep] != '_' {
		return Key{}, ErrMalformed
	}
	id := token[idStart:sep]
	secret := token[sep+1 : bodyLen]
	sum := token[bodyLen:]
	if !isBase62(id) || !isBase62(secret) || !isBase62(sum) {
		return Key{}, ErrMalformed
	}
	var want [ChecksumLen]byte
	appendChecksum(want[:0], crc32String(token[:bodyLen]))
	if string(want[:]) != sum {
		return Key{}, ErrMalformed
	}
	return Key{ID: id, Secret: secret, Token: token}, nil
}

// ValidID reports whether id is a syntactically valid key id. Use it to reject
// bad ids in management requests before touching storage.
func ValidID(id string) bool { return len(id) == IDLen && isBase62(id) }

// HashSecret returns SHA-256(secret), the value stored in the database
// instead of the secret.
//
// A fast hash is deliberate: the secret carries ~256 bits of uniform entropy,
// so neither brute force nor dictionaries are feasible against a leaked hash
// and a slow password KDF (bcrypt, scrypt, Argon2) would add latency to every
// API call without adding security. Use [HashSecretPeppered] to also bind
// hashes to a server-side secret that is not stored in the database.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// HashSecretPeppered returns HMAC-SHA-256(pepper, secret). With an empty
// pepper it is identical to [HashSecret]. Changing the pepper invalidates
// every stored hash.
func HashSecretPeppered(pepper []byte, secret string) []byte {
	if len(pepper) == 0 {
		return HashSecret(secret)
	}
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// EqualHash compares two hashes in constant time (crypto/subtle). Hashes of
// different lengths, or empty ones, are never equal.
func EqualHash(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare(a, b) == 1
}

// VerifySecret reports whether secret matches the stored hash under pepper
// (nil for none), comparing in constant time.
func VerifySecret(secret string, hash, pepper []byte) bool {
	return EqualHash(HashSecretPeppered(pepper, secret), hash)
}

// base62Set[c] reports whether byte c is in alphabet.
var base62Set = func() (set [256]bool) {
	for i := 0; i < len(alphabet); i++ {
		set[alphabet[i]] = true
	}
	return set
}()

// isBase62 reports whether s consists only of alphabet characters.
func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base62Set[s[i]] {
			return false
		}
	}
	return true
}

// crc32String is crc32.ChecksumIEEE(s) without converting s to a []byte
// (which would allocate on every Parse).
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// appendChecksum appends v as exactly ChecksumLen base62 digits.
// 62^6 ≈ 5.7e10 > 2^32, so every uint32 fits.
func appendChecksum(dst []byte, v uint32) []byte {
	var digits [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		digits[i] = alphabet[v%62]
		v /= 62
	}
	return append(dst, digits[:]...)
}

// randomBase62 returns n characters drawn uniformly from alphabet using
// crypto/rand with rejection sampling (bytes >= 248 are discarded, so each
// character has exactly log2(62) bits of entropy and no modulo bias).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // never returns an error since Go 1.24
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62
				continue
			}
			out = append(out, alphabet[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}
