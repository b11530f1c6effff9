package cfapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dot-do/platform/services/runtime/scripts"
)

// Error codes in the errors array, with the HTTP status they come with.
// Where Cloudflare's API has a code for the same condition it is used; the
// others are local choices in the same numbering space, stable for this
// runtime.
const (
	// CodeAuthFormat means a malformed Authorization header (400; Cloudflare's code).
	CodeAuthFormat = 6111
	// CodeAuthMissing means no credentials (400; Cloudflare's code).
	CodeAuthMissing = 9106
	// CodeAuthInvalid means an invalid token (403; Cloudflare's code).
	CodeAuthInvalid = 9109
	// CodeAuthError means the token is not valid for the account in the path (403; Cloudflare's code).
	CodeAuthError = 10000
	// CodeNoRoute means no route for the URI (404; Cloudflare's code).
	CodeNoRoute = 7003
	// CodeMethodNotAllowed means the path does not take the method (405).
	CodeMethodNotAllowed = 10405
	// CodeBadBody means the request body is not what the endpoint takes (400).
	CodeBadBody = 10001
	// CodeInvalidName means an invalid namespace, script, secret or tag name (400).
	CodeInvalidName = 10016
	// CodeScriptNotFound means the script does not exist (404; Cloudflare's code).
	CodeScriptNotFound = 10007
	// CodeInvalidScript means the upload failed validation or its start-up check (400; Cloudflare's code).
	CodeInvalidScript = 10021
	// CodeScriptTooLarge means the modules exceed the size limit (400; Cloudflare's code).
	CodeScriptTooLarge = 10027
	// CodeSecretNotFound means the secret does not exist (404).
	CodeSecretNotFound = 10056
	// CodeNamespaceMissing means the dispatch namespace does not exist (404).
	CodeNamespaceMissing = 10090
	// CodeNamespaceExists means a dispatch namespace of that name exists (409).
	CodeNamespaceExists = 10091
	// CodeUnavailable means workerd could not run the start-up check (503).
	CodeUnavailable = 10013
	// CodeInternal means an internal error (500).
	CodeInternal = 10002
)

// apiError is an error with its HTTP status and Cloudflare code; its message
// reaches the client, so it never carries secrets, tokens or internals.
type apiError struct {
	status  int
	code    int
	message string
}

func (e *apiError) Error() string { return e.message }

func errf(status, code int, msg string) *apiError {
	return &apiError{status: status, code: code, message: msg}
}

type message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type envelope struct {
	Success  bool      `json:"success"`
	Errors   []message `json:"errors"`
	Messages []message `json:"messages"`
	Result   any       `json:"result"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"success":false,"errors":[{"code":10002,"message":"internal error"}],"messages":[],"result":null}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeResult(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []message{}, Messages: []message{}, Result: result})
}

func writeError(w http.ResponseWriter, e *apiError) {
	// Stop cloudflare-go from retrying answers that will not change
	// (it retries 409 and 5xx by default).
	if e.status == http.StatusConflict || e.status == http.StatusInternalServerError {
		w.Header().Set("X-Should-Retry", "false")
	}
	writeJSON(w, e.status, envelope{Success: false, Errors: []message{{Code: e.code, Message: e.message}}, Messages: []message{}, Result: nil})
}

// storeError maps store errors to API errors in one place.
func storeError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, scripts.ErrNamespaceNotFound):
		return errf(http.StatusNotFound, CodeNamespaceMissing, "This Workers for Platforms namespace does not exist.")
	case errors.Is(err, scripts.ErrNamespaceExists):
		return errf(http.StatusConflict, CodeNamespaceExists, "A Workers for Platforms namespace with this name already exists.")
	case errors.Is(err, scripts.ErrScriptNotFound), errors.Is(err, scripts.ErrVersionNotFound):
		return errf(http.StatusNotFound, CodeScriptNotFound, "This Worker does not exist in this namespace.")
	case errors.Is(err, scripts.ErrVersionConflict):
		return errf(http.StatusConflict, CodeInvalidScript, strings.TrimPrefix(err.Error(), scripts.ErrVersionConflict.Error()+": "))
	case errors.Is(err, scripts.ErrSecretNotFound):
		return errf(http.StatusNotFound, CodeSecretNotFound, "This secret does not exist.")
	case errors.Is(err, scripts.ErrInvalid):
		return errf(http.StatusBadRequest, CodeInvalidScript, strings.TrimPrefix(err.Error(), scripts.ErrInvalid.Error()+": "))
	case errors.Is(err, scripts.ErrClosed):
		return errf(http.StatusServiceUnavailable, CodeUnavailable, "The runtime is shutting down.")
	}
	return nil
}
