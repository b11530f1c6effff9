package cfapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/names"
)

// The account-level endpoints that deploying a dispatch Worker uses: the
// account script upload (PUT /accounts/{a}/workers/scripts/{name}), the
// script's cron triggers (GET and PUT
// /accounts/{a}/workers/scripts/{name}/schedules), the zone lookup (GET
// /zones?name=) and a zone's Workers routes. The local
// runtime keeps them in memory and runs none of these scripts: locally the
// platform's Go dispatcher serves the traffic, and these endpoints let the
// deploy, its records and its audit run as they would against Cloudflare.
// Every domain is a zone of the local account.

// account holds the account-level scripts and Workers routes.
type account struct {
	mu      sync.Mutex
	scripts map[string]accountScript
	routes  map[string][]workersRoute // by zone id
}

type accountScript struct {
	ID         string    `json:"id"`
	Etag       string    `json:"etag"`
	Handlers   []string  `json:"handlers"`
	CreatedOn  time.Time `json:"created_on"`
	ModifiedOn time.Time `json:"modified_on"`
	UsageModel string    `json:"usage_model"`
	crons      []string
}

type workersRoute struct {
	ID      string `json:"id"`
	Pattern string `json:"pattern"`
	Script  string `json:"script"`
}

type localZone struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// zoneID is the id of the local zone of a domain: stable, 32 hex digits.
func zoneID(name string) string {
	sum := sha256.Sum256([]byte("zone:" + name))
	return hex.EncodeToString(sum[:16])
}

// uploadAccountScript stores the upload's metadata (not its modules: the
// script does not run here) as the account script segs[2].
func (a *API) uploadAccountScript(w http.ResponseWriter, r *http.Request, name string) *apiError {
	if !names.ValidScript(name) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid script name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
	}
	meta, mods, aerr := a.parseUpload(w, r)
	if aerr != nil {
		return aerr
	}
	if meta == nil || meta.MainModule == "" {
		return errf(http.StatusBadRequest, CodeInvalidScript, "The upload needs a metadata part with main_module.")
	}
	sum := sha256.New()
	found := false
	for _, m := range mods {
		sum.Write(m.Content)
		found = found || m.Name == meta.MainModule
	}
	if !found {
		return errf(http.StatusBadRequest, CodeInvalidScript, "main_module names no uploaded module.")
	}
	acct := &a.account
	acct.mu.Lock()
	defer acct.mu.Unlock()
	if acct.scripts == nil {
		acct.scripts = map[string]accountScript{}
	}
	now := time.Now().UTC()
	s, ok := acct.scripts[name]
	if !ok {
		s = accountScript{ID: name, CreatedOn: now, Handlers: []string{"fetch"}, UsageModel: "standard"}
	}
	s.Etag, s.ModifiedOn = hex.EncodeToString(sum.Sum(nil)), now
	acct.scripts[name] = s
	writeResult(w, s)
	return nil
}

// serveAccountSchedules serves GET and PUT
// /accounts/{a}/workers/scripts/{name}/schedules: the cron triggers of an
// account script, stored and answered as Cloudflare does, never fired
// (the runtime fires the namespace scripts' own crons).
func (a *API) serveAccountSchedules(w http.ResponseWriter, r *http.Request, name string) string {
	route := r.Method + " account script schedules"
	var crons []string
	if r.Method == http.MethodPut {
		var aerr *apiError
		if crons, aerr = decodeSchedules(w, r); aerr != nil {
			writeError(w, aerr)
			return route
		}
	} else if r.Method != http.MethodGet {
		writeError(w, errf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed for this endpoint"))
		return route
	}
	acct := &a.account
	acct.mu.Lock()
	defer acct.mu.Unlock()
	s, ok := acct.scripts[name]
	if !ok {
		writeError(w, errf(http.StatusNotFound, CodeScriptNotFound, "This Worker does not exist on your account."))
		return route
	}
	if r.Method == http.MethodPut {
		s.crons = crons
		acct.scripts[name] = s
	}
	writeResult(w, schedulesOf(s.crons))
	return route
}

// serveZones serves GET /zones and /zones/{zone_id}/workers/routes[/{id}];
// segs are the path segments after "zones".
func (a *API) serveZones(w http.ResponseWriter, r *http.Request, segs []string) (string, *apiError) {
	switch {
	case len(segs) == 0 && r.Method == http.MethodGet:
		return "GET zones", a.listZones(w, r)
	case len(segs) == 3 && segs[1] == "workers" && segs[2] == "routes":
		switch r.Method {
		case http.MethodGet:
			return "GET workers routes", a.listRoutes(w, segs[0])
		case http.MethodPost:
			return "POST workers routes", a.putRoute(w, r, segs[0], "")
		}
	case len(segs) == 4 && segs[1] == "workers" && segs[2] == "routes":
		switch r.Method {
		case http.MethodPut:
			return "PUT workers route", a.putRoute(w, r, segs[0], segs[3])
		case http.MethodDelete:
			return "DELETE workers route", a.deleteRoute(w, segs[0], segs[3])
		}
	default:
		return "no route", errf(http.StatusNotFound, CodeNoRoute, "No route for the URI")
	}
	return r.Method + " zones", errf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed for this endpoint")
}

// listZones answers a zone lookup by name: the local account holds every
// domain, so a well-formed name is always a zone.
func (a *API) listZones(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	if acct := q.Get("account.id"); acct != "" && acct != a.cfg.AccountID {
		writeResult(w, []localZone{})
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(q.Get("name"), "."))
	zones := []localZone{}
	if name != "" && len(name) <= 253 && !strings.ContainsAny(name, "/:*?% ") {
		zones = append(zones, localZone{ID: zoneID(name), Name: name, Status: "active"})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "errors": []message{}, "messages": []message{}, "result": zones,
		"result_info": map[string]int{"page": 1, "per_page": 20, "count": len(zones), "total_count": len(zones), "total_pages": 1},
	})
	return nil
}

func (a *API) listRoutes(w http.ResponseWriter, zone string) *apiError {
	acct := &a.account
	acct.mu.Lock()
	defer acct.mu.Unlock()
	routes := slices.Clone(acct.routes[zone])
	if routes == nil {
		routes = []workersRoute{}
	}
	writeResult(w, routes)
	return nil
}

// putRoute creates a route (id "") or replaces route id of zone.
func (a *API) putRoute(w http.ResponseWriter, r *http.Request, zone, id string) *apiError {
	var body workersRoute
	if aerr := decodeJSON(w, r, &body); aerr != nil {
		return aerr
	}
	if body.Pattern == "" || !strings.Contains(body.Pattern, "/") {
		return errf(http.StatusBadRequest, CodeBadBody, "A route needs a pattern such as example.com/*.")
	}
	acct := &a.account
	acct.mu.Lock()
	defer acct.mu.Unlock()
	if _, ok := acct.scripts[body.Script]; body.Script != "" && !ok {
		return errf(http.StatusNotFound, CodeScriptNotFound, "This Worker does not exist on your account.")
	}
	if acct.routes == nil {
		acct.routes = map[string][]workersRoute{}
	}
	routes := acct.routes[zone]
	for i, rt := range routes {
		if rt.Pattern == body.Pattern && rt.ID != id {
			return errf(http.StatusConflict, CodeBadBody, "A route with this pattern exists on the zone.")
		}
		if rt.ID == id {
			routes[i] = workersRoute{ID: id, Pattern: body.Pattern, Script: body.Script}
			writeResult(w, routes[i])
			return nil
		}
	}
	if id != "" {
		return errf(http.StatusNotFound, CodeNoRoute, "This route does not exist.")
	}
	sum := sha256.Sum256([]byte(zone + "/" + body.Pattern + "/" + time.Now().String()))
	rt := workersRoute{ID: hex.EncodeToString(sum[:16]), Pattern: body.Pattern, Script: body.Script}
	acct.routes[zone] = append(routes, rt)
	writeResult(w, rt)
	return nil
}

func (a *API) deleteRoute(w http.ResponseWriter, zone, id string) *apiError {
	acct := &a.account
	acct.mu.Lock()
	defer acct.mu.Unlock()
	routes := acct.routes[zone]
	for i, rt := range routes {
		if rt.ID == id {
			acct.routes[zone] = slices.Delete(routes, i, i+1)
			writeResult(w, nil)
			return nil
		}
	}
	return errf(http.StatusNotFound, CodeNoRoute, "This route does not exist.")
}
