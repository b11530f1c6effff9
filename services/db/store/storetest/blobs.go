package storetest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

func testBlobs(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	count := func() int64 { return must[int64](t)(h.QueryInt64(ctx, `SELECT COUNT(*) FROM blobs`)) }
	data := []byte("export default { fetch() { return new Response('hi') } }")
	sum := must[string](t)(h.PutBlob(ctx, data))
	if sum != store.SHA256Hex(data) {
		t.Fatalf("PutBlob returned %s, want %s", sum, store.SHA256Hex(data))
	}
	if got := must[[]byte](t)(h.GetBlob(ctx, sum)); !bytes.Equal(got, data) {
		t.Fatalf("GetBlob returned %q", got)
	}
	// Deduplicated: the second put writes nothing.
	if again := must[string](t)(h.PutBlob(ctx, bytes.Clone(data))); again != sum || count() != 1 {
		t.Fatalf("second put: %s, %d rows", again, count())
	}
	empty := must[string](t)(h.PutBlob(ctx, nil))
	if got := must[[]byte](t)(h.GetBlob(ctx, empty)); len(got) != 0 || count() != 2 {
		t.Fatalf("empty blob: %q, %d rows", got, count())
	}

	_, err := h.GetBlob(ctx, store.SHA256Hex([]byte("absent")))
	wantErr(t, err, errkind.NotFound)
	for _, bad := range []string{"", "abc", strings.ToUpper(sum), sum + "0", strings.Repeat("g", 64)} {
		_, err := h.GetBlob(ctx, bad)
		wantErr(t, err, errkind.Invalid)
	}

	// Corruption behind the store's back is detected on read...
	if n, err := h.ExecSQL(ctx, `UPDATE blobs SET data = ? WHERE sha256 = ?`, []byte("export default {}"), sum); err != nil || n != 1 {
		t.Fatalf("corrupting the blob: %d rows, %v", n, err)
	}
	_, err = h.GetBlob(ctx, sum)
	wantErr(t, err, errkind.Corrupt)
	// ...and repaired by putting the right bytes again.
	must[string](t)(h.PutBlob(ctx, data))
	if got := must[[]byte](t)(h.GetBlob(ctx, sum)); !bytes.Equal(got, data) || count() != 2 {
		t.Fatalf("after repair: %q, %d rows", got, count())
	}

	small := h.Reopen(t, store.WithMaxBlobSize(8))
	_, err = small.PutBlob(ctx, []byte("123456789"))
	wantErr(t, err, errkind.Invalid)
	must[string](t)(small.PutBlob(ctx, []byte("12345678")))
}
