package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dot-do/platform/internal/errkind"
)

// AuditGenesisHash is the PrevHash of the first audit event.
var AuditGenesisHash = strings.Repeat("0", 2*sha256.Size)

// Limits enforced on audit events.
const (
	// MaxAuditFieldLen bounds every string field of an audit event.
	MaxAuditFieldLen = 1024
	// MaxAuditDetailEntries bounds the number of Detail entries.
	MaxAuditDetailEntries = 64
)

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	// Seq numbers the events from 1 without gaps; set by AppendAudit.
	Seq int64
	// Time defaults to the store's clock when zero.
	Time time.Time
	// Actor is the API key id that acted ("" for the system).
	Actor     string
	ActorName string
	// Action is required, e.g. "deploy.begin" or "apikey.revoke".
	Action   string
	Resource string
	// Outcome is free-form, e.g. "success", "denied", "error".
	Outcome   string
	Detail    map[string]string
	RequestID string
	TraceID   string
	// PrevHash is the Hash of event Seq-1 (AuditGenesisHash for Seq 1).
	PrevHash string
	// Hash is AuditMAC of this event under the store's audit key
	// (HashAuditEvent when the store has none).
	Hash string
}

// Normalize validates e and applies defaults (Time from now, copied Detail),
// returning an error wrapping errkind.Invalid when e is malformed.
func (e AuditEvent) Normalize(now time.Time) (AuditEvent, error) {
	if e.Action == "" {
		return e, fmt.Errorf("audit action is required: %w", errkind.Invalid)
	}
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"actor name", e.ActorName}, {"action", e.Action}, {"resource", e.Resource},
		{"outcome", e.Outcome}, {"request id", e.RequestID}, {"trace id", e.TraceID},
	} {
		if len(f.v) > MaxAuditFieldLen || !utf8.ValidString(f.v) {
			return e, fmt.Errorf("audit %s is longer than %d bytes or not UTF-8: %w", f.name, MaxAuditFieldLen, errkind.Invalid)
		}
	}
	if len(e.Detail) > MaxAuditDetailEntries {
		return e, fmt.Errorf("%d audit detail entries, more than %d: %w", len(e.Detail), MaxAuditDetailEntries, errkind.Invalid)
	}
	if e.Detail != nil {
		d := make(map[string]string, len(e.Detail))
		for k, v := range e.Detail {
			if k == "" || len(k) > MaxAuditFieldLen || !utf8.ValidString(k) ||
				len(v) > MaxMetadataValueLen || !utf8.ValidString(v) {
				return e, fmt.Errorf("audit detail %q: empty, too long or not UTF-8: %w", truncateUTF8(k, 64), errkind.Invalid)
			}
			d[k] = v
		}
		e.Detail = d
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = Timestamp(e.Time)
	return e, nil
}

// HashAuditEvent returns the lowercase hex SHA-256 of the canonical encoding
// of e: a version tag, then Seq, Time (Unix microseconds), Actor, ActorName,
// Action, Resource, Outcome, Detail (entry count, then entries sorted by
// key), RequestID, TraceID and PrevHash. Integers are 8-byte big-endian and
// every string is preceded by its 8-byte big-endian length, so no two
// different events share an encoding. e.Hash is ignored.
func HashAuditEvent(e AuditEvent) string {
	h := sha256.New()
	encodeAudit(h, "dotdo.audit.v1", e)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditMAC returns the lowercase hex HMAC-SHA-256 under key of the same
// canonical encoding as HashAuditEvent, tagged "dotdo.audit.v2" instead:
// the link of a keyed audit chain, which nobody without key can compute,
// so that rewriting an event (or the whole chain) in the database is
// detected. With an empty key it is HashAuditEvent.
func AuditMAC(key []byte, e AuditEvent) string {
	if len(key) == 0 {
		return HashAuditEvent(e)
	}
	h := hmac.New(sha256.New, key)
	encodeAudit(h, "dotdo.audit.v2", e)
	return hex.EncodeToString(h.Sum(nil))
}

// encodeAudit writes the canonical encoding of e, after tag, to h.
func encodeAudit(h hash.Hash, tag string, e AuditEvent) {
	w := auditEncoder{h: h}
	w.str(tag)
	w.int(e.Seq)
	w.int(e.Time.UnixMicro())
	w.str(e.Actor)
	w.str(e.ActorName)
	w.str(e.Action)
	w.str(e.Resource)
	w.str(e.Outcome)
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.int(int64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(e.Detail[k])
	}
	w.str(e.RequestID)
	w.str(e.TraceID)
	w.str(e.PrevHash)
}

type auditEncoder struct {
	h   hash.Hash
	buf [8]byte
}

func (w *auditEncoder) int(v int64) {
	binary.BigEndian.PutUint64(w.buf[:], uint64(v))
	w.h.Write(w.buf[:])
}

func (w *auditEncoder) str(s string) {
	w.int(int64(len(s)))
	w.h.Write([]byte(s))
}

// AuditFilter selects audit events for ListAudit. Empty fields match
// everything.
type AuditFilter struct {
	Actor    string
	Action   string
	Resource string
	// Since is inclusive, Until exclusive; zero means unbounded.
	Since time.Time
	Until time.Time
	// PageSize defaults to DefaultPageSize and is capped at MaxPageSize.
	PageSize int
	// PageToken is the nextPageToken of the previous page of the same
	// filter.
	PageToken string
}

// AuditHead names one event of the audit chain by its seq and Hash (its
// MAC). Exported outside the database (`dotdo audit head`) and checked
// later by VerifyAudit, it catches what a keyed chain alone cannot: the
// newest events deleted and the chain head moved back.
type AuditHead struct {
	// Seq is the event's sequence number; 0 names the empty chain.
	Seq int64
	// Hash is the event's MAC (AuditGenesisHash for Seq 0).
	Hash string
	// Keyed reports, on the head AuditHead returns, whether the store
	// keys the chain (it has an audit key). Ignored by VerifyAudit.
	Keyed bool
}

// AuditRekeyer is implemented by the stores whose audit chain can be
// migrated to a new audit key.
type AuditRekeyer interface {
	// RekeyAudit makes the store's audit key the key of the whole chain:
	// when the chain does not verify under that key, it checks it as the
	// unkeyed chain of earlier versions (plain SHA-256 links), recomputes
	// every link as a MAC under the key, and appends an event
	// (ActionAuditRekey) recording the old head and whether the old chain
	// verified. A chain that verifies under the key already is left alone,
	// so the call is idempotent. It runs in one transaction that holds the
	// chain head, so appends wait for it.
	RekeyAudit(ctx context.Context) (RekeyResult, error)
}

// ActionAuditRekey is the action of the event RekeyAudit appends.
const ActionAuditRekey = "audit.rekey"

// RekeyResult is the outcome of RekeyAudit.
type RekeyResult struct {
	// Rekeyed is false when the chain verified under the key already.
	Rekeyed bool
	// Events is how many events were re-linked (the rekey event excluded).
	Events int64
	// Previous is the outcome of verifying the old chain as unkeyed.
	Previous VerifyResult
}

// VerifyResult is the outcome of VerifyAudit.
type VerifyResult struct {
	// OK is true when every link of the chain holds (and the chain holds
	// the head it was asked to check).
	OK bool
	// Checked is how many events were verified before stopping.
	Checked int64
	// FirstBrokenSeq is the first event whose link does not hold (0 if OK).
	FirstBrokenSeq int64
	// Reason explains the break.
	Reason string
	// Keyed reports whether the links were checked as MACs under the
	// store's audit key (false: plain SHA-256, a store without a key).
	Keyed bool
	// FromSeq is the seq of the checkpoint the walk resumed after (see
	// AuditCheckpointer); 0 when it started at event 1.
	FromSeq int64
}

// AuditCheckpointMAC returns the lowercase hex HMAC-SHA-256 under key of a
// checkpoint of the audit chain: event seq, whose MAC is hash, closes a
// prefix of the chain that verified from event 1. The encoding is tagged
// "dotdo.audit.checkpoint.v1", so it never equals the MAC of an event.
// Checkpoints exist only for a keyed chain: the key must not be empty.
func AuditCheckpointMAC(key []byte, seq int64, hash string) string {
	h := hmac.New(sha256.New, key)
	w := auditEncoder{h: h}
	w.str("dotdo.audit.checkpoint.v1")
	w.int(seq)
	w.str(hash)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditVerifyOptions are the options of VerifyAuditFrom.
type AuditVerifyOptions struct {
	// Head, when not nil, is an exported head the chain must still hold
	// (as for VerifyAudit).
	Head *AuditHead
	// FromCheckpoint resumes the walk after the newest checkpoint whose
	// MAC holds under the store's audit key, instead of at event 1: the
	// checkpoint's event must still carry its recorded MAC (and that MAC
	// must still be the event's), then only the events after it are
	// walked. A change to an event before the checkpoint is caught by a
	// walk from event 1 (FromCheckpoint false), not by this one. Without
	// an audit key there are no checkpoints and the walk starts at event 1.
	FromCheckpoint bool
	// SaveCheckpoint records a checkpoint at the head the walk reached when
	// the chain verified (keyed stores only).
	SaveCheckpoint bool
}

// AuditCheckpointer is implemented by the stores that keep verified
// checkpoints of their audit chain, so that a verification need not rehash
// the log from event 1 every time. A checkpoint carries a MAC under the
// audit key (AuditCheckpointMAC): someone who can write the database but
// does not hold the key can delete checkpoints (verification then starts
// further back) but not add or move one.
type AuditCheckpointer interface {
	// VerifyAuditFrom verifies the chain as VerifyAudit does, from the
	// newest valid checkpoint when opts.FromCheckpoint is set, and records
	// a checkpoint at the verified head when opts.SaveCheckpoint is set. A
	// valid checkpoint beyond the chain head means events were deleted and
	// the head moved back, and is reported as a broken chain.
	VerifyAuditFrom(ctx context.Context, opts AuditVerifyOptions) (VerifyResult, error)
}

// VerifyAuditLog verifies the chain of a as the VerifyAuditLog RPCs do:
// through AuditCheckpointer when a keeps checkpoints (resuming after the
// newest one when fromCheckpoint is set, and recording one at the head
// whenever the chain verifies), else with VerifyAudit from event 1.
func VerifyAuditLog(ctx context.Context, a Audit, head *AuditHead, fromCheckpoint bool) (VerifyResult, error) {
	if cp, ok := a.(AuditCheckpointer); ok {
		return cp.VerifyAuditFrom(ctx, AuditVerifyOptions{Head: head, FromCheckpoint: fromCheckpoint, SaveCheckpoint: true})
	}
	return a.VerifyAudit(ctx, head)
}
