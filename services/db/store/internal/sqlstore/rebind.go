package sqlstore

import (
	"strconv"
	"strings"
	"sync"
)

var rebindCache sync.Map // query string -> rebound string

// Rebind rewrites the '?' placeholders of query as $1, $2, ... for
// PostgreSQL, leaving question marks inside quoted strings, quoted
// identifiers and comments alone. Results are cached.
func Rebind(query string) string {
	if v, ok := rebindCache.Load(query); ok {
		return v.(string)
	}
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				i = len(query)
				continue
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	rebindCache.Store(query, out)
	return out
}
