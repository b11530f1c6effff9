package cfapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dot-do/platform/internal/names"
)

// splitPath splits the escaped path below Prefix into unescaped segments.
// Segments are unescaped one by one, so "%2F" stays inside its segment
// (and is then refused by name validation).
func splitPath(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, Prefix)
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil, true
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

type handler func(w http.ResponseWriter, r *http.Request, segs []string) *apiError

// route picks the handler for the path below .../dispatch/namespaces. A nil
// handler means no such path; a known path with another method answers 405.
func (a *API) route(method string, segs []string) (handler, string) {
	type ep struct {
		route   string
		methods map[string]handler
	}
	var e ep
	switch {
	case len(segs) == 0:
		e = ep{"namespaces", map[string]handler{"GET": a.listNamespaces, "POST": a.createNamespace}}
	case len(segs) == 1:
		e = ep{"namespace", map[string]handler{"GET": a.getNamespace, "DELETE": a.deleteNamespace}}
	case len(segs) == 2 && segs[1] == "scripts":
		e = ep{"scripts", map[string]handler{"GET": a.listScripts, "DELETE": a.deleteScriptsByTag}}
	case len(segs) == 3 && segs[1] == "scripts":
		e = ep{"script", map[string]handler{"GET": a.getScript, "PUT": a.uploadScript, "DELETE": a.deleteScript}}
	case len(segs) == 4 && segs[1] == "scripts":
		switch segs[3] {
		case "content":
			e = ep{"script content", map[string]handler{"GET": a.getContent, "PUT": a.putContent}}
		case "settings":
			e = ep{"script settings", map[string]handler{"GET": a.getSettings}}
		case "bindings":
			e = ep{"script bindings", map[string]handler{"GET": a.getBindings}}
		case "tags":
			e = ep{"script tags", map[string]handler{"GET": a.getTags, "PUT": a.putTags}}
		case "secrets":
			e = ep{"script secrets", map[string]handler{"GET": a.listSecrets, "PUT": a.putSecret}}
		case "schedules":
			e = ep{"script schedules", map[string]handler{"GET": a.getSchedules, "PUT": a.putSchedules}}
		case "scheduled":
			e = ep{"script scheduled", map[string]handler{"POST": a.runScheduled}}
		}
	case len(segs) == 5 && segs[1] == "scripts":
		switch segs[3] {
		case "tags":
			e = ep{"script tag", map[string]handler{"PUT": a.putTag, "DELETE": a.deleteTag}}
		case "secrets":
			e = ep{"script secret", map[string]handler{"GET": a.getSecret, "DELETE": a.deleteSecret}}
		}
	}
	if e.methods == nil {
		return nil, ""
	}
	if h, ok := e.methods[method]; ok {
		return h, method + " " + e.route
	}
	return func(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
		return errf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed for this endpoint")
	}, method + " " + e.route
}

// pathNames validates the namespace (and script) segments.
func pathNames(segs []string, withScript bool) (ns, script string, err *apiError) {
	ns = segs[0]
	if !names.ValidScript(ns) {
		return "", "", errf(http.StatusBadRequest, CodeInvalidName, "Invalid namespace name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
	}
	if withScript {
		script = segs[2]
		if !names.ValidScript(script) {
			return "", "", errf(http.StatusBadRequest, CodeInvalidName, "Invalid script name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
		}
	}
	return ns, script, nil
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) *apiError {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, CodeBadBody, "The request body is not valid JSON for this endpoint.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errf(http.StatusBadRequest, CodeBadBody, "The request body has data after the JSON value.")
	}
	return nil
}

func fail(err error) *apiError {
	if err == nil {
		return nil
	}
	if ae := storeError(err); ae != nil {
		return ae
	}
	return errf(http.StatusInternalServerError, CodeInternal, "Internal error.")
}
