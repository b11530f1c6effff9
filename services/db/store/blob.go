package store

import (
	"crypto/sha256"
	"encoding/hex"
)

// DefaultMaxBlobSize is the largest blob PutBlob accepts unless the store
// was opened WithMaxBlobSize.
const DefaultMaxBlobSize = 64 << 20

// SHA256Hex returns the lowercase hex SHA-256 of data, the address of data
// in Blobs.
func SHA256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ValidSHA256 reports whether s is a lowercase hex SHA-256 (64 digits).
func ValidSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
