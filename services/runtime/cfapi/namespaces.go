package cfapi

import (
	"net/http"
	"time"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/runtime/scripts"
)

type namespaceJSON struct {
	NamespaceID    string    `json:"namespace_id"`
	NamespaceName  string    `json:"namespace_name"`
	CreatedOn      time.Time `json:"created_on"`
	CreatedBy      string    `json:"created_by"`
	ModifiedOn     time.Time `json:"modified_on"`
	ModifiedBy     string    `json:"modified_by"`
	ScriptCount    int       `json:"script_count"`
	TrustedWorkers bool      `json:"trusted_workers"`
}

func (a *API) namespaceJSON(n scripts.Namespace) namespaceJSON {
	return namespaceJSON{
		NamespaceID: n.ID, NamespaceName: n.Name, CreatedOn: n.CreatedOn, CreatedBy: a.cfg.AccountID,
		ModifiedOn: n.ModifiedOn, ModifiedBy: a.cfg.AccountID, ScriptCount: n.ScriptCount,
	}
}

func (a *API) listNamespaces(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
	list := a.cfg.Store.Namespaces()
	out := make([]namespaceJSON, 0, len(list))
	for _, n := range list {
		out = append(out, a.namespaceJSON(n))
	}
	writeResult(w, out)
	return nil
}

func (a *API) createNamespace(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if !names.ValidScript(body.Name) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid namespace name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
	}
	n, err := a.cfg.Store.CreateNamespace(body.Name)
	if err != nil {
		return fail(err)
	}
	writeResult(w, a.namespaceJSON(n))
	return nil
}

func (a *API) getNamespace(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return aerr
	}
	n, err := a.cfg.Store.Namespace(ns)
	if err != nil {
		return fail(err)
	}
	writeResult(w, a.namespaceJSON(n))
	return nil
}

func (a *API) deleteNamespace(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return aerr
	}
	if err := a.cfg.Store.DeleteNamespace(ns); err != nil {
		return fail(err)
	}
	if a.cfg.OnNamespaceDeleted != nil {
		a.cfg.OnNamespaceDeleted(ns)
	}
	writeResult(w, nil)
	return nil
}
