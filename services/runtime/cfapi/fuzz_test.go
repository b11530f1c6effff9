package cfapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzParseUpload feeds arbitrary multipart bodies (and Content-Type
// headers) to the script upload parser, then converts the metadata's
// bindings as an upload would. It checks that nothing panics, that an
// accepted upload has named modules within the size limit, and that a
// refusal is a 4xx API error. The committed seed corpus lives in
// testdata/fuzz/FuzzParseUpload.
func FuzzParseUpload(f *testing.F) {
	const boundary = "b0undary"
	ctype := "multipart/form-data; boundary=" + boundary
	part := func(disp, ctype, body string) string {
		s := "--" + boundary + "\r\nContent-Disposition: " + disp + "\r\n"
		if ctype != "" {
			s += "Content-Type: " + ctype + "\r\n"
		}
		return s + "\r\n" + body + "\r\n"
	}
	end := "--" + boundary + "--\r\n"
	meta := `{"main_module":"index.js","compatibility_date":"2025-01-01","bindings":[{"type":"plain_text","name":"A","text":"x"},{"type":"inherit","name":"B"}],"tags":["dotdo-version=3"],"keep_bindings":["secret_text"]}`
	f.Add(ctype, []byte(part(`form-data; name="metadata"; filename="blob"`, "application/json", meta)+
		part(`form-data; name="files"; filename="index.js"`, "application/javascript+module", "export default {}")+end))
	f.Add(ctype, []byte(part(`form-data; name="metadata"`, "", `{}`)+part(`form-data; name="lib/util.js"`, "", "x")+end))
	f.Add(ctype, []byte(part(`form-data; name="metadata"`, "", `{}`)+part(`form-data; name="metadata"`, "", `{}`)+end))
	f.Add(ctype, []byte(part(`form-data`, "", "nameless")+end))
	f.Add(ctype, []byte(part(`form-data; name="metadata"`, "", `{"bindings":[{"type":"json","name":"J"}]}`)+end))
	f.Add(ctype, []byte("--"+boundary+"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ntruncated"))
	f.Add("multipart/form-data", []byte(end))
	f.Add("text/plain", []byte("hello"))
	f.Add(`multipart/form-data; boundary="quoted boundary"`, []byte("--quoted boundary--\r\n"))
	a := &API{cfg: Config{MaxScriptBytes: 4 << 10}}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPut, "/client/v4/accounts/local/workers/dispatch/namespaces/ns/scripts/s", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		meta, mods, aerr := a.parseUpload(w, r)
		if aerr != nil {
			if aerr.status < 400 || aerr.status > 499 {
				t.Fatalf("refusal with status %d", aerr.status)
			}
			return
		}
		var total int64
		for _, m := range mods {
			if m.Name == "" {
				t.Fatal("accepted a module without a name")
			}
			total += int64(len(m.Content))
		}
		if total > a.cfg.MaxScriptBytes {
			t.Fatalf("accepted %d bytes of modules, over the %d limit", total, a.cfg.MaxScriptBytes)
		}
		if meta != nil {
			for _, strict := range []bool{false, true} {
				_, _ = bindingsFrom(meta, nil, strict)
			}
		}
	})
}
