package deploy

import (
	"mime"
	"net/http"
)

// RESTCompat adapts requests on the original REST paths before the
// transcoder sees them, so that the original API's clients work unchanged:
//   - `GET /` is served as `GET /info` (GetServiceInfo), since an HTTP rule
//     cannot spell the root path;
//   - a `POST /deploy` or `POST /rollback` body sent without a JSON content
//     type (curl -d sends application/x-www-form-urlencoded) is read as
//     JSON, which is the only body these paths accept.
func RESTCompat(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			r.URL.Path = "/info"
			r.URL.RawPath = ""
		case r.Method == http.MethodPost && (r.URL.Path == "/deploy" || r.URL.Path == "/rollback"):
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "" || mt == "application/x-www-form-urlencoded" {
				r.Header.Set("Content-Type", "application/json")
			}
		}
		next.ServeHTTP(w, r)
	})
}
