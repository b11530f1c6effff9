// Package pbtime converts between time.Time and protobuf timestamps, with
// the zero time standing for an unset field in both directions.
package pbtime

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// To converts t to a protobuf timestamp; nil for the zero time.
func To(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// From converts a protobuf timestamp to a time; the zero time for nil.
func From(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
