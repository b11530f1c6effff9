package cfapi

import (
	"net/http"
	"time"

	"github.com/dot-do/platform/services/runtime/scripts"
)

type scriptJSON struct {
	ID                 string    `json:"id"`
	Etag               string    `json:"etag"`
	CreatedOn          time.Time `json:"created_on"`
	ModifiedOn         time.Time `json:"modified_on"`
	CompatibilityDate  string    `json:"compatibility_date"`
	CompatibilityFlags []string  `json:"compatibility_flags"`
	Tags               []string  `json:"tags"`
	HasModules         bool      `json:"has_modules"`
	HasAssets          bool      `json:"has_assets"`
	Logpush            bool      `json:"logpush"`
	UsageModel         string    `json:"usage_model"`
	StartupTimeMs      int64     `json:"startup_time_ms"`
	LastDeployedFrom   string    `json:"last_deployed_from"`
	// DotdoVersion is the local runtime's version number of the current
	// upload: the one the invocation endpoint takes.
	DotdoVersion int64 `json:"dotdo_version"`
}

func toScriptJSON(s scripts.Script) scriptJSON {
	c := s.Current
	flags := c.CompatibilityFlags
	if flags == nil {
		flags = []string{}
	}
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	usage := c.UsageModel
	if usage == "" {
		usage = "standard"
	}
	return scriptJSON{
		ID: s.Name, Etag: c.Etag, CreatedOn: s.CreatedOn, ModifiedOn: s.ModifiedOn,
		CompatibilityDate: c.CompatibilityDate, CompatibilityFlags: flags, Tags: tags,
		HasModules: true, Logpush: c.Logpush, UsageModel: usage, StartupTimeMs: c.StartupTimeMs,
		LastDeployedFrom: "api", DotdoVersion: c.Number,
	}
}

func (a *API) getScript(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, struct {
		CreatedOn         time.Time  `json:"created_on"`
		ModifiedOn        time.Time  `json:"modified_on"`
		DispatchNamespace string     `json:"dispatch_namespace"`
		Script            scriptJSON `json:"script"`
	}{s.CreatedOn, s.ModifiedOn, ns, toScriptJSON(s)})
	return nil
}

func (a *API) deleteScript(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if err := a.cfg.Store.DeleteScript(ns, name); err != nil {
		return fail(err)
	}
	a.scriptsDeleted(ns, name)
	writeResult(w, nil)
	return nil
}

// filteredNamespace validates the namespace that segs name and parses the
// request's ?tags= filter.
func filteredNamespace(r *http.Request, segs []string) (string, tagFilter, *apiError) {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return "", tagFilter{}, aerr
	}
	f, aerr := parseTagFilter(r.URL.Query().Get("tags"))
	return ns, f, aerr
}

func (a *API) listScripts(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, f, aerr := filteredNamespace(r, segs)
	if aerr != nil {
		return aerr
	}
	list, err := a.cfg.Store.Scripts(ns, f.match)
	if err != nil {
		return fail(err)
	}
	out := make([]scriptJSON, 0, len(list))
	for _, s := range list {
		out = append(out, toScriptJSON(s))
	}
	writeResult(w, out)
	return nil
}

func (a *API) deleteScriptsByTag(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, f, aerr := filteredNamespace(r, segs)
	if aerr != nil {
		return aerr
	}
	if f.empty() {
		return errf(http.StatusBadRequest, CodeBadBody, "A tags filter is required to delete scripts (for example ?tags=customer-1:yes).")
	}
	deleted, err := a.cfg.Store.DeleteScripts(ns, f.match)
	a.scriptsDeleted(ns, deleted...)
	if err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

// scriptsDeleted tells Config.OnScriptDeleted of each deleted script.
func (a *API) scriptsDeleted(ns string, names ...string) {
	if a.cfg.OnScriptDeleted == nil {
		return
	}
	for _, name := range names {
		a.cfg.OnScriptDeleted(ns, name)
	}
}

// script returns the namespace, name and script that segs name.
func (a *API) script(segs []string) (ns, name string, s scripts.Script, aerr *apiError) {
	ns, name, aerr = pathNames(segs, true)
	if aerr != nil {
		return "", "", scripts.Script{}, aerr
	}
	s, err := a.cfg.Store.Script(ns, name)
	if err != nil {
		return "", "", scripts.Script{}, fail(err)
	}
	return ns, name, s, nil
}
