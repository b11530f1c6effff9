package store

import "errors"

// Sentinel errors. Store methods wrap them with context using
// fmt.Errorf("...: %w", Err...), so test for them with errors.Is.
var (
	// ErrNotFound reports that the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists reports that a record with the same identity already
	// exists (duplicate API key id, bootstrap when an admin key exists, ...).
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition reports that the record is not in a state that
	// allows the operation (illegal deployment transition, revoked key, ...).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrLeaseHeld reports that another holder owns an unexpired lease.
	ErrLeaseHeld = errors.New("lease held by another holder")
	// ErrCorrupt reports that stored data failed an integrity check (a blob
	// whose content no longer matches its SHA-256, an undecodable row).
	ErrCorrupt = errors.New("corrupt data")
	// ErrInvalidArgument reports that the caller passed a malformed value.
	ErrInvalidArgument = errors.New("invalid argument")
)
