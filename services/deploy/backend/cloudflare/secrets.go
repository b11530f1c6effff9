package cloudflare

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	cf "github.com/cloudflare/cloudflare-go/v6"
	wfp "github.com/cloudflare/cloudflare-go/v6/workers_for_platforms"

	"github.com/dot-do/platform/services/deploy/backend"
)

var _ backend.Secrets = (*Backend)(nil)

// secretOp names an operation on a script's secrets and checks the names
// that go into its path.
func secretOp(verb, namespace, script, name string) (string, error) {
	op := fmt.Sprintf("%s secrets of script %s in namespace %s", verb, script, namespace)
	if name != "" {
		op = fmt.Sprintf("%s secret %s of script %s in namespace %s", verb, name, script, namespace)
		if err := checkName("secret", name); err != nil {
			return op, err
		}
	}
	if err := checkName("namespace", namespace); err != nil {
		return op, err
	}
	return op, checkName("script", script)
}

// PutSecret implements backend.Secrets with Cloudflare's per-script
// secrets of a dispatch namespace script (PUT .../scripts/{script}/secrets,
// a secret_text binding). The value is sent in the request body only.
func (b *Backend) PutSecret(ctx context.Context, namespace, script, name, value string) error {
	op, err := secretOp("put", namespace, script, name)
	if err != nil {
		return err
	}
	var raw *http.Response
	_, err = b.namespace.Scripts.Secrets.Update(ctx, namespace, script, wfp.DispatchNamespaceScriptSecretUpdateParams{
		AccountID: cf.F(b.accountID),
		Body: wfp.DispatchNamespaceScriptSecretUpdateParamsBodyWorkersBindingKindSecretText{
			Name: cf.F(name),
			Text: cf.F(value),
			Type: cf.F(wfp.DispatchNamespaceScriptSecretUpdateParamsBodyWorkersBindingKindSecretTextTypeSecretText),
		},
	}, b.opts(namespace, &raw)...)
	if err != nil {
		return b.fail(op, raw, err)
	}
	return nil
}

// ListSecrets implements backend.Secrets (GET .../scripts/{script}/secrets).
func (b *Backend) ListSecrets(ctx context.Context, namespace, script string) ([]string, error) {
	op, err := secretOp("list", namespace, script, "")
	if err != nil {
		return nil, err
	}
	var raw *http.Response
	page, err := b.namespace.Scripts.Secrets.List(ctx, namespace, script, wfp.DispatchNamespaceScriptSecretListParams{AccountID: cf.F(b.accountID)}, b.opts(namespace, &raw)...)
	if err != nil {
		return nil, b.fail(op, raw, err)
	}
	out := make([]string, 0, len(page.Result))
	for _, s := range page.Result {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out, nil
}

// DeleteSecret implements backend.Secrets (DELETE
// .../scripts/{script}/secrets/{name}).
func (b *Backend) DeleteSecret(ctx context.Context, namespace, script, name string) error {
	op, err := secretOp("delete", namespace, script, name)
	if err != nil {
		return err
	}
	var raw *http.Response
	_, err = b.namespace.Scripts.Secrets.Delete(ctx, namespace, script, name, wfp.DispatchNamespaceScriptSecretDeleteParams{AccountID: cf.F(b.accountID)}, b.opts(namespace, &raw)...)
	if err != nil {
		return b.fail(op, raw, err)
	}
	return nil
}
