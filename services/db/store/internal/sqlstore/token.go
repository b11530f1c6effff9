package sqlstore

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/dot-do/platform/internal/errkind"
)

// Page tokens are opaque to callers: base64url of a version byte, a kind
// byte, a 32-bit fingerprint of the filter that produced them and the seq of
// the last item returned. A token presented with another filter or to
// another List method is rejected.

const tokenVersion = 1

const (
	tokenDeployments     byte = 'd'
	tokenAudit           byte = 'a'
	tokenRouteTables     byte = 'r'
	tokenDispatchWorkers byte = 'w'
	tokenPending         byte = 'p'
)

func fingerprint(parts ...string) uint32 {
	h := fnv.New32a()
	var l [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(l[:], uint32(len(p)))
		h.Write(l[:])
		h.Write([]byte(p))
	}
	return h.Sum32()
}

func encodeToken(kind byte, fp uint32, seq int64) string {
	var b [14]byte
	b[0], b[1] = tokenVersion, kind
	binary.BigEndian.PutUint32(b[2:6], fp)
	binary.BigEndian.PutUint64(b[6:14], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeToken returns the seq after which the next page starts, or 0 for an
// empty token.
func decodeToken(tok string, kind byte, fp uint32) (int64, error) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 14 || b[0] != tokenVersion || b[1] != kind {
		return 0, fmt.Errorf("malformed page token: %w", errkind.Invalid)
	}
	if binary.BigEndian.Uint32(b[2:6]) != fp {
		return 0, fmt.Errorf("page token was issued for a different filter: %w", errkind.Invalid)
	}
	seq := int64(binary.BigEndian.Uint64(b[6:14]))
	if seq <= 0 {
		return 0, fmt.Errorf("malformed page token: %w", errkind.Invalid)
	}
	return seq, nil
}
