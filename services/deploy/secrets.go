package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// A worker's secrets are write-only and live in the backend only (the
// runtime's sealed store, or Cloudflare's per-script secrets): the
// platform passes a value through to backend.Secrets and keeps nothing of
// it. Its database holds the audit events of each change, with the
// secret's name and never its value; ListSecrets takes the update times
// from them. A secret belongs to the script, not to an upload, so a
// redeploy or a rollback keeps it.
//
// A secret may be put only on a worker with a live deployment in the
// environment. Cloudflare would create an empty draft script for a secret
// of a script that does not exist, which the dispatcher could then route
// to; the local runtime has no script without a version. So the first
// deploy comes first, then its secrets.

// Audit actions of secrets; resource "secret/<env>/<service>/<name>". The
// detail never holds the value.
const (
	// ActionSecretPut is a PutSecret: OutcomeStarted before the value
	// goes to the backend (fail closed), then OutcomeSuccess or
	// OutcomeFailure.
	ActionSecretPut = "secret.put"
	// ActionSecretDelete is a DeleteSecret, with the outcomes of
	// ActionSecretPut.
	ActionSecretDelete = "secret.delete"
)

// MaxSecretBytes is the largest secret value: Cloudflare's limit of 5 KiB.
const MaxSecretBytes = 5 << 10

// MaxSecretNameLen is the longest secret name.
const MaxSecretNameLen = names.MaxSecretNameLen

// ErrNoSecrets means the namespace backend keeps no per-script secrets.
var ErrNoSecrets = errkind.New(errkind.Precondition, "the namespace backend does not keep secrets")

// SecretInput is a secret to put.
type SecretInput struct {
	// Service is the worker.
	Service string
	// Environment is one of the configured environments.
	Environment string
	// Name is the secret's name: a JavaScript identifier.
	Name string
	// Value is the secret, 1 to MaxSecretBytes bytes. It is never logged,
	// stored by the platform, traced or put in an error.
	Value string
}

// String describes in without its value.
func (in SecretInput) String() string {
	return fmt.Sprintf("secret %s of %s in %s", in.Name, in.Service, in.Environment)
}

// GoString is String, so %#v does not print the value either.
func (in SecretInput) GoString() string { return in.String() }

// SecretInfo describes a secret without its value.
type SecretInfo struct {
	// Name is the secret's name.
	Name string
	// UpdatedAt is when the platform last put it; zero when unknown (set
	// outside the platform, or its audit events are gone).
	UpdatedAt time.Time
}

// checkSecretName refuses a name that is not a names.ValidSecretName, or
// that starts with ReservedBindingPrefix (a secret is a key of the
// worker's env, as a var or a binding is).
func checkSecretName(name string) error {
	switch {
	case !names.ValidSecretName(name):
		return invalid("name", "%q is not a valid secret name: use a JavaScript identifier (letters, digits, _ and $, not starting with a digit) of at most %d characters", truncate(name, 64), MaxSecretNameLen)
	case strings.HasPrefix(name, ReservedBindingPrefix):
		return invalid("name", "%q is not a valid secret name: it starts with %q, which is reserved for the platform", truncate(name, 64), ReservedBindingPrefix)
	}
	return nil
}

// secretTarget authorizes c for perm on env and checks the names; it
// returns the principal, the environment and the backend's secrets.
func (s *Service) secretTarget(ctx context.Context, c Caller, perm authz.Permission, service, env, name string) (authz.Principal, backend.Secrets, string, error) {
	p, err := s.authz.Authorize(ctx, c.Token, perm, env, c.Client)
	if err != nil {
		return authz.Principal{}, nil, "", err
	}
	if err := checkService(service); err != nil {
		return authz.Principal{}, nil, "", err
	}
	e, err := s.environment("environment", env)
	if err != nil {
		return authz.Principal{}, nil, "", err
	}
	if name != "" || perm == authz.PermSecretsWrite {
		if err := checkSecretName(name); err != nil {
			return authz.Principal{}, nil, "", err
		}
	}
	sb, ok := s.backend.(backend.Secrets)
	if !ok {
		return authz.Principal{}, nil, "", fmt.Errorf("%w (%s)", ErrNoSecrets, s.backend.Name())
	}
	return p, sb, e.Namespace, nil
}

// requireDeployed returns a Precondition error unless service has a live
// deployment in env.
func (s *Service) requireDeployed(ctx context.Context, service, env string) error {
	_, err := s.rec.GetLive(ctx, env, service)
	if errors.Is(err, errkind.NotFound) {
		return errkind.Errorf(errkind.Precondition, "worker %s has no live deployment in %s: deploy it first, then set its secrets", service, env)
	}
	return err
}

// PutSecret creates or replaces a secret of a deployed worker and reports
// whether it is new. The caller needs secrets.write on the environment. A
// bad name or value is a *FieldError naming "name" or "value" (which never
// quotes the value). The change is audited with the secret's name
// (ActionSecretPut), fail closed.
func (s *Service) PutSecret(ctx context.Context, c Caller, in SecretInput) (SecretInfo, bool, error) {
	ctx, span := s.start(ctx, "deploy.PutSecret", in.Environment, in.Service)
	defer span.End()
	span.SetAttributes(attribute.String("dotdo.secret", in.Name))
	info, created, err := s.putSecret(ctx, c, in)
	return info, created, spanErr(span, err)
}

func (s *Service) putSecret(ctx context.Context, c Caller, in SecretInput) (SecretInfo, bool, error) {
	p, sb, ns, err := s.secretTarget(ctx, c, authz.PermSecretsWrite, in.Service, in.Environment, in.Name)
	if err != nil {
		return SecretInfo{}, false, err
	}
	switch {
	case in.Value == "":
		return SecretInfo{}, false, invalid("value", "must not be empty")
	case len(in.Value) > MaxSecretBytes:
		return SecretInfo{}, false, &FieldError{Field: "value", Reason: fmt.Sprintf("is %d bytes, more than the %d bytes (5 KiB) a secret may hold", len(in.Value), MaxSecretBytes), Kind: errkind.Invalid}
	}
	if err := s.requireDeployed(ctx, in.Service, in.Environment); err != nil {
		return SecretInfo{}, false, err
	}
	existing, err := sb.ListSecrets(ctx, ns, in.Service)
	if err != nil {
		return SecretInfo{}, false, secretBackendErr(in.Service, in.Environment, err)
	}
	created := !slices.Contains(existing, in.Name)
	err = s.auditSecret(ctx, c, p, ActionSecretPut, in.Service, in.Environment, in.Name, map[string]string{"created": fmt.Sprint(created)}, func() error {
		return sb.PutSecret(ctx, ns, in.Service, in.Name, in.Value)
	})
	if err != nil {
		return SecretInfo{}, false, err
	}
	s.log.InfoContext(ctx, "secret put", "service", in.Service, "environment", in.Environment, "name", in.Name, "created", created, "actor", p.KeyID)
	return SecretInfo{Name: in.Name, UpdatedAt: s.now().UTC()}, created, nil
}

// DeleteSecret removes a secret of a worker. The caller needs
// secrets.write on the environment; a missing secret is NotFound. The
// change is audited (ActionSecretDelete), fail closed.
func (s *Service) DeleteSecret(ctx context.Context, c Caller, service, env, name string) error {
	ctx, span := s.start(ctx, "deploy.DeleteSecret", env, service)
	defer span.End()
	span.SetAttributes(attribute.String("dotdo.secret", name))
	return spanErr(span, s.deleteSecret(ctx, c, service, env, name))
}

func (s *Service) deleteSecret(ctx context.Context, c Caller, service, env, name string) error {
	p, sb, ns, err := s.secretTarget(ctx, c, authz.PermSecretsWrite, service, env, name)
	if err != nil {
		return err
	}
	existing, err := sb.ListSecrets(ctx, ns, service)
	if err != nil {
		return secretBackendErr(service, env, err)
	}
	if !slices.Contains(existing, name) {
		return errkind.Errorf(errkind.NotFound, "worker %s in %s has no secret %s", service, env, name)
	}
	err = s.auditSecret(ctx, c, p, ActionSecretDelete, service, env, name, nil, func() error {
		return sb.DeleteSecret(ctx, ns, service, name)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "secret deleted", "service", service, "environment", env, "name", name, "actor", p.KeyID)
	return nil
}

// ListSecrets returns the names of a worker's secrets, sorted, with the
// time the platform last put each. The caller needs secrets.read on the
// environment. A worker the backend does not hold has none.
func (s *Service) ListSecrets(ctx context.Context, c Caller, service, env string) ([]SecretInfo, error) {
	_, sb, ns, err := s.secretTarget(ctx, c, authz.PermSecretsRead, service, env, "")
	if err != nil {
		return nil, err
	}
	list, err := sb.ListSecrets(ctx, ns, service)
	if errors.Is(err, backend.ErrNotFound) {
		return []SecretInfo{}, nil
	}
	if err != nil {
		return nil, secretBackendErr(service, env, err)
	}
	out := make([]SecretInfo, len(list))
	for i, n := range list {
		out[i] = SecretInfo{Name: n}
		events, _, err := s.rec.ListAudit(ctx, store.AuditFilter{Action: ActionSecretPut, Resource: secretResource(env, service, n), PageSize: 10})
		if err != nil {
			return nil, err
		}
		for _, e := range events { // newest first
			if e.Outcome == OutcomeSuccess {
				out[i].UpdatedAt = e.Time
				break
			}
		}
	}
	return out, nil
}

// auditSecret runs change between a started audit event (fail closed: no
// event, no change) and its outcome's.
func (s *Service) auditSecret(ctx context.Context, c Caller, p authz.Principal, action, service, env, name string, detail map[string]string, change func() error) error {
	if detail == nil {
		detail = map[string]string{}
	}
	detail["name"] = name
	resource := secretResource(env, service, name)
	if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeStarted, copyDetail(detail))); err != nil {
		return err
	}
	if err := change(); err != nil {
		err = secretBackendErr(service, env, err)
		detail["error"] = err.Error()
		if aerr := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeFailure, detail)); aerr != nil {
			s.log.ErrorContext(ctx, "audit a failed secret change", "resource", resource, "err", aerr.Error())
		}
		return err
	}
	return s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeSuccess, detail))
}

// secretBackendErr words a backend error of a worker's secrets: a script
// the backend does not hold is a precondition (deploy it first).
func secretBackendErr(service, env string, err error) error {
	if errors.Is(err, backend.ErrNotFound) {
		return errkind.Errorf(errkind.Precondition, "worker %s is not in the namespace of %s: deploy it first: %w", service, env, err)
	}
	return err
}

// secretResource names a secret in audit events:
// "secret/<env>/<service>/<name>".
func secretResource(env, service, name string) string {
	return fmt.Sprintf("secret/%s/%s/%s", env, service, name)
}
