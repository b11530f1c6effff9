package store

import (
	"net/url"
	"time"
)

// MaxLeaseTTL bounds the ttl of AcquireLease and RenewLease.
const MaxLeaseTTL = 24 * time.Hour

// Lease is a named lock with an expiry, held in the database. Expiry is
// computed from the clock of the process that acquires or renews, so the
// hosts sharing a database need synchronized clocks (NTP); keep TTLs well
// above the expected skew.
type Lease struct {
	Name string
	// Holder identifies the owner (e.g. host/pid/random); empty once
	// released.
	Holder string
	// Token increases every time the lease changes hands (not on renewal),
	// so it can serve as a fencing token.
	Token      int64
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

// Held reports whether the lease is held by someone at now.
func (l Lease) Held(now time.Time) bool {
	return l.Holder != "" && l.ExpiresAt.After(now)
}

// DeployLeaseName is the name of the lease that serializes the deploys of
// service in environment.
func DeployLeaseName(environment, service string) string {
	return "deploy/" + url.PathEscape(environment) + "/" + url.PathEscape(service)
}
