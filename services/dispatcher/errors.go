package dispatcher

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// writeJSONError writes {"error": {"code", "message", "request_id"}} with
// status, and the request id in RequestIDHeader.
func writeJSONError(w http.ResponseWriter, status int, code, msg, requestID string) {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: msg, RequestID: requestID}})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(RequestIDHeader, requestID)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorBody is the JSON body of the dispatcher's own answers.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}
