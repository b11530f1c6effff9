package cfapi

import (
	"encoding/json"
	"net/http"

	"github.com/dot-do/platform/services/runtime/scripts"
)

type bindingJSON struct {
	Name string          `json:"name"`
	Type string          `json:"type"`
	Text string          `json:"text,omitempty"`
	JSON json.RawMessage `json:"json,omitempty"`
}

// publicBindings renders bindings for the client: secret values never leave.
func publicBindings(bs []scripts.Binding) []bindingJSON {
	out := make([]bindingJSON, 0, len(bs))
	for _, b := range bs {
		j := bindingJSON{Name: b.Name, Type: b.Type}
		switch b.Type {
		case scripts.BindingPlainText:
			j.Text = b.Text
		case scripts.BindingJSON:
			j.JSON = b.JSON
		}
		out = append(out, j)
	}
	return out
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	c := s.Current
	usage := c.UsageModel
	if usage == "" {
		usage = "standard"
	}
	flags := c.CompatibilityFlags
	if flags == nil {
		flags = []string{}
	}
	writeResult(w, struct {
		Bindings           []bindingJSON `json:"bindings"`
		CompatibilityDate  string        `json:"compatibility_date"`
		CompatibilityFlags []string      `json:"compatibility_flags"`
		Logpush            bool          `json:"logpush"`
		Tags               []string      `json:"tags"`
		TailConsumers      []any         `json:"tail_consumers"`
		UsageModel         string        `json:"usage_model"`
	}{publicBindings(c.Bindings), c.CompatibilityDate, flags, c.Logpush, nonNil(s.Tags), []any{}, usage})
	return nil
}

func (a *API) getBindings(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, publicBindings(s.Current.Bindings))
	return nil
}
