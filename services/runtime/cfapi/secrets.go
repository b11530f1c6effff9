package cfapi

import (
	"net/http"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/runtime/scripts"
)

type secretJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	out := make([]secretJSON, 0, len(s.SecretNames))
	for _, n := range s.SecretNames {
		out = append(out, secretJSON{Name: n, Type: scripts.BindingSecretText})
	}
	writeResult(w, out)
	return nil
}

func (a *API) putSecret(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	var body struct {
		Name string  `json:"name"`
		Text *string `json:"text"`
		Type string  `json:"type"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Type == "" {
		body.Type = scripts.BindingSecretText
	}
	if body.Type != scripts.BindingSecretText {
		return errf(http.StatusBadRequest, CodeBadBody, "Only secrets of type secret_text are supported by the local runtime.")
	}
	if !names.ValidBinding(body.Name) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid secret name.")
	}
	if body.Text == nil {
		return errf(http.StatusBadRequest, CodeBadBody, "A secret_text secret needs a text field.")
	}
	if err := a.cfg.Store.PutSecret(ns, name, body.Name, *body.Text); err != nil {
		return fail(err)
	}
	writeResult(w, secretJSON{Name: body.Name, Type: scripts.BindingSecretText})
	return nil
}

func (a *API) getSecret(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	for _, n := range s.SecretNames {
		if n == segs[4] {
			writeResult(w, secretJSON{Name: n, Type: scripts.BindingSecretText})
			return nil
		}
	}
	return fail(scripts.ErrSecretNotFound)
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if err := a.cfg.Store.DeleteSecret(ns, name, segs[4]); err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}
