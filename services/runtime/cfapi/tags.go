package cfapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dot-do/platform/services/runtime/scripts"
)

// tagFilter is a parsed ?tags= filter: "a:yes,b:no" keeps scripts tagged a
// and not tagged b; a bare "a" means "a:yes".
type tagFilter struct {
	include, exclude []string
}

func parseTagFilter(q string) (tagFilter, *apiError) {
	var f tagFilter
	for _, item := range strings.Split(q, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		tag, want := item, "yes"
		if i := strings.LastIndexByte(item, ':'); i >= 0 {
			switch strings.ToLower(item[i+1:]) {
			case "yes", "true":
				tag, want = item[:i], "yes"
			case "no", "false":
				tag, want = item[:i], "no"
			}
		}
		if !scripts.ValidTag(tag) {
			return f, errf(http.StatusBadRequest, CodeInvalidName, "Invalid tags filter: use tag:yes or tag:no, separated by commas.")
		}
		if want == "yes" {
			f.include = append(f.include, tag)
		} else {
			f.exclude = append(f.exclude, tag)
		}
	}
	return f, nil
}

func (f tagFilter) empty() bool { return len(f.include) == 0 && len(f.exclude) == 0 }

func (f tagFilter) match(s scripts.Script) bool {
	has := func(t string) bool {
		for _, x := range s.Tags {
			if x == t {
				return true
			}
		}
		return false
	}
	for _, t := range f.include {
		if !has(t) {
			return false
		}
	}
	for _, t := range f.exclude {
		if has(t) {
			return false
		}
	}
	return true
}

func (a *API) getTags(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, nonNil(s.Tags))
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *API) putTags(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	var tags []string
	if err := decodeJSON(w, r, &tags); err != nil {
		return err
	}
	if _, err := scripts.ValidateTags(tags); err != nil {
		return errf(http.StatusBadRequest, CodeInvalidName, err.Error())
	}
	got, err := a.cfg.Store.SetTags(ns, name, tags)
	if err != nil {
		return fail(err)
	}
	writeResult(w, nonNil(got))
	return nil
}

func (a *API) putTag(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if !scripts.ValidTag(segs[4]) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid tag.")
	}
	if _, err := a.cfg.Store.AddTag(ns, name, segs[4]); err != nil {
		if errors.Is(err, scripts.ErrInvalid) {
			return errf(http.StatusBadRequest, CodeInvalidName, strings.TrimPrefix(err.Error(), scripts.ErrInvalid.Error()+": "))
		}
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

func (a *API) deleteTag(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if _, err := a.cfg.Store.RemoveTag(ns, name, segs[4]); err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}
