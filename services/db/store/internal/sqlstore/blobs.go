package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

// PutBlob implements store.Blobs.
func (e *Engine) PutBlob(ctx context.Context, data []byte) (string, error) {
	if len(data) > e.opts.MaxBlobSize {
		return "", fmt.Errorf("blob of %d bytes exceeds the %d byte limit: %w", len(data), e.opts.MaxBlobSize, errkind.Invalid)
	}
	if data == nil {
		data = []byte{} // a nil slice would be bound as NULL
	}
	sum := store.SHA256Hex(data)
	// Deduplicate without taking the write lock when the bytes are present
	// and intact.
	switch _, err := e.GetBlob(ctx, sum); {
	case err == nil:
		return sum, nil
	case !errors.Is(err, errkind.NotFound) && !errors.Is(err, errkind.Corrupt):
		return "", err
	}
	err := e.d.InTx(ctx, func(tx Queryer) error {
		// Insert, or repair a stored copy that no longer matches its hash.
		_, err := tx.Exec(ctx, `INSERT INTO blobs (sha256, size, data, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (sha256) DO UPDATE SET data = excluded.data, size = excluded.size
WHERE blobs.size <> excluded.size OR blobs.data <> excluded.data`,
			sum, int64(len(data)), data, micros(e.now()))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("put blob %s: %w", sum, err)
	}
	return sum, nil
}

// GetBlob implements store.Blobs.
func (e *Engine) GetBlob(ctx context.Context, sha256Hex string) ([]byte, error) {
	if !store.ValidSHA256(sha256Hex) {
		return nil, fmt.Errorf("blob address %q is not a lowercase hex sha256: %w", sha256Hex, errkind.Invalid)
	}
	var data []byte
	err := e.d.Reader().QueryRow(ctx, `SELECT data FROM blobs WHERE sha256 = ?`, sha256Hex).Scan(&data)
	if errors.Is(err, ErrNoRows) {
		return nil, fmt.Errorf("blob %s: %w", sha256Hex, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", sha256Hex, err)
	}
	if got := store.SHA256Hex(data); got != sha256Hex {
		return nil, fmt.Errorf("blob %s: stored content hashes to %s: %w", sha256Hex, got, errkind.Corrupt)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
