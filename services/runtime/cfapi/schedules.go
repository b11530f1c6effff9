package cfapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/dot-do/platform/internal/cron"
)

// Scheduler runs the scheduled() handler of the current version of a
// script. A handler that fails is a *ScriptError.
type Scheduler func(ctx context.Context, namespace, script, cron string) error

// scheduleJSON is one cron trigger, as Cloudflare's schedules endpoint
// writes it.
type scheduleJSON struct {
	Cron string `json:"cron"`
}

type schedulesJSON struct {
	Schedules []scheduleJSON `json:"schedules"`
}

func schedulesOf(crons []string) schedulesJSON {
	out := schedulesJSON{Schedules: make([]scheduleJSON, len(crons))}
	for i, c := range crons {
		out.Schedules[i] = scheduleJSON{Cron: c}
	}
	return out
}

// decodeSchedules reads a schedules body, [{"cron": "*/5 * * * *"}, ...],
// and returns its crons, each parsed.
func decodeSchedules(w http.ResponseWriter, r *http.Request) ([]string, *apiError) {
	var body []scheduleJSON
	if err := decodeJSON(w, r, &body); err != nil {
		return nil, err
	}
	crons := make([]string, len(body))
	for i, b := range body {
		if _, err := cron.Parse(b.Cron); err != nil {
			return nil, errf(http.StatusBadRequest, CodeBadBody, "Invalid cron: "+err.Error())
		}
		crons[i] = b.Cron
	}
	return crons, nil
}

// getSchedules answers the cron triggers of a script:
// GET .../scripts/{s}/schedules, shaped as Cloudflare's account-level
// schedules endpoint (Cloudflare has none for namespace scripts).
func (a *API) getSchedules(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, schedulesOf(s.Current.Crons))
	return nil
}

// putSchedules replaces the cron triggers of a script's current version
// with the body, [{"cron": "*/5 * * * *"}, ...].
func (a *API) putSchedules(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	crons, aerr := decodeSchedules(w, r)
	if aerr != nil {
		return aerr
	}
	s, err := a.cfg.Store.SetCrons(ns, name, crons)
	if err != nil {
		return fail(err)
	}
	writeResult(w, schedulesOf(s.Current.Crons))
	return nil
}

// runScheduled runs the scheduled() handler of a script's current version
// now: POST .../scripts/{s}/scheduled?cron=EXPR, an endpoint of the local
// runtime's own. It answers once the handler has run; a handler that threw
// is a 400 with its error.
func (a *API) runScheduled(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, _, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	if a.cfg.Scheduler == nil {
		return errf(http.StatusServiceUnavailable, CodeUnavailable, "This runtime runs no scheduled handlers.")
	}
	c := r.URL.Query().Get("cron")
	if c != "" {
		if _, err := cron.Parse(c); err != nil {
			return errf(http.StatusBadRequest, CodeBadBody, "Invalid cron: "+err.Error())
		}
	}
	err := a.cfg.Scheduler(r.Context(), ns, name, c)
	var se *ScriptError
	switch {
	case err == nil:
		writeResult(w, scheduleJSON{Cron: c})
		return nil
	case errors.As(err, &se):
		return errf(http.StatusBadRequest, CodeInvalidScript, "The scheduled handler failed: "+se.Message)
	case r.Context().Err() != nil:
		return errf(http.StatusServiceUnavailable, CodeUnavailable, "The request was canceled.")
	}
	if ae := storeError(err); ae != nil {
		return ae
	}
	a.log.Error("runtime api: scheduled run failed", "namespace", ns, "script", name, "err", err)
	return errf(http.StatusServiceUnavailable, CodeUnavailable, "The scheduled handler could not be run; try again.")
}
