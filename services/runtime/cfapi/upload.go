package cfapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"

	"github.com/dot-do/platform/services/runtime/scripts"
)

// uploadMetadata is the metadata part of a script upload. Fields the local
// runtime does not use (assets, migrations, observability, placement, ...)
// are accepted and ignored.
type uploadMetadata struct {
	MainModule         string          `json:"main_module"`
	BodyPart           string          `json:"body_part"`
	CompatibilityDate  string          `json:"compatibility_date"`
	CompatibilityFlags []string        `json:"compatibility_flags"`
	Bindings           []metaBinding   `json:"bindings"`
	Tags               *[]string       `json:"tags"`
	KeepBindings       []string        `json:"keep_bindings"`
	Logpush            bool            `json:"logpush"`
	UsageModel         string          `json:"usage_model"`
	Limits             *scripts.Limits `json:"limits"`
}

type metaBinding struct {
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Text    *string         `json:"text"`
	JSON    json.RawMessage `json:"json"`
	OldName string          `json:"old_name"`
	Service string          `json:"service"`
}

func tooLarge(max int64) *apiError {
	return errf(http.StatusBadRequest, CodeScriptTooLarge, fmt.Sprintf("Script exceeds the size limit of %d bytes.", max))
}

// parseUpload reads a multipart upload: an optional metadata part (JSON)
// and one part per module. A module's name is the part's filename, or its
// form name when it has no filename (cloudflare-go sends name="files" and
// filename=<module>; wrangler and curl examples name the part after the
// module). Module contents are bounded by MaxScriptBytes in total.
func (a *API) parseUpload(w http.ResponseWriter, r *http.Request) (*uploadMetadata, []scripts.Module, *apiError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, errf(http.StatusBadRequest, CodeBadBody, "Expected a multipart/form-data body with a metadata part and one part per module.")
	}
	max := a.cfg.MaxScriptBytes
	body := http.MaxBytesReader(w, r.Body, max+maxMetadataSize+1<<20)
	mr := multipart.NewReader(body, params["boundary"])
	var (
		meta  *uploadMetadata
		mods  []scripts.Module
		total int64
	)
	readErr := func(err error) *apiError {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(max)
		}
		return errf(http.StatusBadRequest, CodeBadBody, "The multipart body is malformed.")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, readErr(err)
		}
		formName, fileName := dispositionNames(part.Header)
		if formName == "metadata" {
			if meta != nil {
				return nil, nil, errf(http.StatusBadRequest, CodeInvalidScript, "The upload has more than one metadata part.")
			}
			b, err := io.ReadAll(io.LimitReader(part, maxMetadataSize+1))
			if err != nil {
				return nil, nil, readErr(err)
			}
			if len(b) > maxMetadataSize {
				return nil, nil, errf(http.StatusBadRequest, CodeInvalidScript, "The metadata part is too large.")
			}
			var m uploadMetadata
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, nil, errf(http.StatusBadRequest, CodeInvalidScript, "The metadata part is not valid JSON.")
			}
			meta = &m
			continue
		}
		name := fileName
		if name == "" {
			name = formName
		}
		if name == "" {
			return nil, nil, errf(http.StatusBadRequest, CodeBadBody, "A multipart part has no name.")
		}
		remaining := max - total
		b, err := io.ReadAll(io.LimitReader(part, remaining+1))
		if err != nil {
			return nil, nil, readErr(err)
		}
		if int64(len(b)) > remaining {
			return nil, nil, tooLarge(max)
		}
		total += int64(len(b))
		mods = append(mods, scripts.Module{
			ModuleInfo: scripts.ModuleInfo{Name: name, ContentType: part.Header.Get("Content-Type")},
			Content:    b,
		})
	}
	return meta, mods, nil
}

// dispositionNames returns the name and the raw filename of a part
// (multipart.Part.FileName would strip directories from module paths).
func dispositionNames(h textproto.MIMEHeader) (name, filename string) {
	_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil {
		return "", ""
	}
	return params["name"], params["filename"]
}

// bindingsFrom converts metadata bindings, resolving "inherit" bindings and
// keep_bindings against the current version (prev, nil for a new script).
func bindingsFrom(meta *uploadMetadata, prev []scripts.Binding, strict bool) ([]scripts.Binding, *apiError) {
	out := make([]scripts.Binding, 0, len(meta.Bindings))
	defined := map[string]bool{}
	for _, b := range meta.Bindings {
		switch b.Type {
		case scripts.BindingPlainText, scripts.BindingSecretText:
			if b.Text == nil {
				return nil, errf(http.StatusBadRequest, CodeInvalidScript, fmt.Sprintf("Binding %q of type %s needs a text field.", b.Name, b.Type))
			}
			out = append(out, scripts.Binding{Name: b.Name, Type: b.Type, Text: *b.Text})
		case scripts.BindingJSON:
			if len(b.JSON) == 0 {
				return nil, errf(http.StatusBadRequest, CodeInvalidScript, fmt.Sprintf("Binding %q of type json needs a json field.", b.Name))
			}
			out = append(out, scripts.Binding{Name: b.Name, Type: b.Type, JSON: b.JSON})
		case scripts.BindingService:
			if b.Service == "" {
				return nil, errf(http.StatusBadRequest, CodeInvalidScript, fmt.Sprintf("Binding %q of type service needs a service field.", b.Name))
			}
			out = append(out, scripts.Binding{Name: b.Name, Type: b.Type, Service: b.Service})
		case "inherit":
			from := b.OldName
			if from == "" {
				from = b.Name
			}
			i := slices.IndexFunc(prev, func(p scripts.Binding) bool { return p.Name == from })
			if i < 0 {
				if strict {
					return nil, errf(http.StatusBadRequest, CodeInvalidScript, fmt.Sprintf("Binding %q cannot be inherited: the current version has no binding %q.", b.Name, from))
				}
				continue
			}
			nb := prev[i]
			nb.Name = b.Name
			out = append(out, nb)
		default:
			return nil, errf(http.StatusBadRequest, CodeInvalidScript, fmt.Sprintf("Binding %q has type %q, which the local runtime does not support (supported: plain_text, json, secret_text, service, inherit).", b.Name, b.Type))
		}
		defined[b.Name] = true
	}
	for _, p := range prev {
		if slices.Contains(meta.KeepBindings, p.Type) && !defined[p.Name] {
			out = append(out, p)
			defined[p.Name] = true
		}
	}
	return out, nil
}

func (a *API) uploadScript(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if _, err := a.cfg.Store.Namespace(ns); err != nil {
		return fail(err)
	}
	meta, mods, aerr := a.parseUpload(w, r)
	if aerr != nil {
		return aerr
	}
	if meta == nil {
		return errf(http.StatusBadRequest, CodeInvalidScript, "The upload has no metadata part (a JSON part named metadata is required).")
	}
	if meta.MainModule == "" && meta.BodyPart != "" {
		return errf(http.StatusBadRequest, CodeInvalidScript, "Service-worker syntax (body_part) is not supported by the local runtime: upload ES modules and set main_module.")
	}
	var prev *scripts.Script
	if s, err := a.cfg.Store.Script(ns, name); err == nil {
		prev = &s
	} else if !errors.Is(err, scripts.ErrScriptNotFound) {
		return fail(err)
	}
	var prevBindings []scripts.Binding
	if prev != nil {
		prevBindings = prev.Current.Bindings
	}
	bindings, aerr := bindingsFrom(meta, prevBindings, r.URL.Query().Get("bindings_inherit") == "strict")
	if aerr != nil {
		return aerr
	}
	d := scripts.Draft{
		MainModule:         meta.MainModule,
		CompatibilityDate:  meta.CompatibilityDate,
		CompatibilityFlags: meta.CompatibilityFlags,
		Bindings:           bindings,
		Modules:            mods,
		Logpush:            meta.Logpush,
		UsageModel:         meta.UsageModel,
	}
	if meta.Limits != nil {
		d.Limits = *meta.Limits
	}
	if d.CompatibilityDate == "" {
		d.CompatibilityDate = a.cfg.DefaultCompatibilityDate
	}
	if meta.Tags != nil {
		d.Tags = *meta.Tags
		if d.Tags == nil {
			d.Tags = []string{}
		}
	}
	return a.commit(w, r, ns, name, &d)
}

// commit validates, start-checks and stores a draft, then answers with the
// script (as the upload endpoints do).
func (a *API) commit(w http.ResponseWriter, r *http.Request, ns, name string, d *scripts.Draft) *apiError {
	if err := scripts.ValidateDraft(d); err != nil {
		return fail(err)
	}
	if a.cfg.Checker != nil {
		secrets, _, err := a.cfg.Store.Secrets(ns, name)
		if err != nil && !errors.Is(err, scripts.ErrScriptNotFound) {
			return fail(err)
		}
		took, err := a.cfg.Checker.CheckStartup(r.Context(), ns, name, d, secrets)
		if err != nil {
			var se *ScriptError
			if errors.As(err, &se) {
				return errf(http.StatusBadRequest, CodeInvalidScript, se.Message)
			}
			if r.Context().Err() != nil {
				return errf(http.StatusServiceUnavailable, CodeUnavailable, "The request was canceled.")
			}
			a.log.Error("runtime api: startup check unavailable", "namespace", ns, "script", name, "err", err)
			return errf(http.StatusServiceUnavailable, CodeUnavailable, "The runtime could not check the script; try again.")
		}
		d.StartupTimeMs = took.Milliseconds()
	}
	s, err := a.cfg.Store.PutVersion(ns, name, *d)
	if err != nil {
		if ae := storeError(err); ae != nil {
			return ae
		}
		a.log.Error("runtime api: storing script", "namespace", ns, "script", name, "err", err)
		return fail(err)
	}
	a.log.Info("runtime api: script uploaded", "namespace", ns, "script", name, "version", s.Current.Number,
		"size", s.Current.Size, "startup_ms", s.Current.StartupTimeMs)
	if a.cfg.OnVersion != nil {
		a.cfg.OnVersion(s)
	}
	setVersionHeader(w, s.Current.Number)
	writeResult(w, toScriptJSON(s))
	return nil
}

// putContent replaces the modules of a script, keeping its settings and
// bindings: a new version.
func (a *API) putContent(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	meta, mods, aerr := a.parseUpload(w, r)
	if aerr != nil {
		return aerr
	}
	main := r.Header.Get("CF-WORKER-MAIN-MODULE-PART")
	if meta != nil && meta.MainModule != "" {
		main = meta.MainModule
	}
	if main == "" {
		return errf(http.StatusBadRequest, CodeInvalidScript, "metadata.main_module (or the CF-WORKER-MAIN-MODULE-PART header) is required.")
	}
	c := s.Current
	d := scripts.Draft{
		MainModule:         main,
		CompatibilityDate:  c.CompatibilityDate,
		CompatibilityFlags: c.CompatibilityFlags,
		Bindings:           c.Bindings,
		Modules:            mods,
		Logpush:            c.Logpush,
		UsageModel:         c.UsageModel,
		Limits:             c.Limits,
	}
	return a.commit(w, r, ns, name, &d)
}

// getContent answers the current version's modules as multipart/form-data,
// one part per module (name and filename = module name), with the main
// module named in the CF-WORKER-MAIN-MODULE-PART header.
func (a *API) getContent(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	v, err := a.cfg.Store.Version(ns, name, s.Current.Number)
	if err != nil {
		return fail(err)
	}
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", mw.FormDataContentType())
	w.Header().Set("CF-WORKER-MAIN-MODULE-PART", v.MainModule)
	setVersionHeader(w, v.Number)
	w.WriteHeader(http.StatusOK)
	for i, m := range v.Modules {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": m.Name, "filename": m.Name}))
		ct := m.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil
		}
		if _, err := pw.Write(v.Contents[i]); err != nil {
			return nil
		}
	}
	_ = mw.Close()
	return nil
}

// scriptVersionHeader carries the new version number of an upload.
const scriptVersionHeader = "X-Dotdo-Script-Version"

func setVersionHeader(w http.ResponseWriter, n int64) {
	w.Header().Set(scriptVersionHeader, strconv.FormatInt(n, 10))
}
