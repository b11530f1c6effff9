// Package scripts keeps the local runtime's dispatch namespaces, scripts, their
// versions and secrets on disk.
//
// Layout under the data directory:
//
//	LOCK                                        advisory lock: one runtime per directory
//	secrets.key                                 AES-256-GCM key sealing secret values (0600, made by the first secret)
//	tmp/                                        staging and trash, emptied on open
//	namespaces/<ns>/namespace.json              id, times, last version of deleted scripts
//	namespaces/<ns>/scripts/<script>/script.json   versions, tags, sealed secrets, current metadata
//	namespaces/<ns>/scripts/<script>/versions/<n>.json  one immutable file per version
//
// Every write is atomic: a temporary file is written and fsynced, renamed into
// place and its directory fsynced. A version file is renamed into place before
// script.json names it, so a crash leaves at worst an orphan version file,
// which Open removes while keeping its number burned. Version numbers are per
// script, start at 1, increase monotonically and are never reused, not even
// after the script is deleted and uploaded again.
//
// Mutations are serialized by one mutex and do their disk I/O under it;
// readers (Lookup, Script, ...) use a separate read lock that mutations hold
// only to publish the new in-memory state, so the invocation path never
// waits for an fsync.
package scripts
