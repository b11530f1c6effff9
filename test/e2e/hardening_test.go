package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/cli"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth/apikey"
)

// rssMB reads the resident set of the dotdo dev process, in MB.
func rssMB(t *testing.T) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", platform.pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// floodCount and floodSize are the anonymous flood of issue 13: 30
// concurrent 15 MiB POST /deploy without a key.
const (
	floodCount = 30
	floodSize  = 15 << 20
)

// TestAnonymousFloodCostsNoMemory sends floodCount concurrent anonymous
// floodSize POST /deploy to a real `dotdo dev` and checks that its RSS
// grows by at most 100 MB (it grew by more than a gigabyte when the API
// read and decoded a body before checking the key), and that every request
// was refused as unauthenticated.
func TestAnonymousFloodCostsNoMemory(t *testing.T) {
	need(t)
	body := make([]byte, floodSize)
	copy(body, `{"service":"gateway","environment":"production","script":"`)
	for i := len(`{"service":"gateway","environment":"production","script":"`); i < len(body)-2; i++ {
		body[i] = 'A'
	}
	copy(body[len(body)-2:], `"}`)
	before := rssMB(t)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if mb := int64(rssMB(t)); mb > peak.Load() {
				peak.Store(mb)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	statuses := make([]int, floodCount)
	start := time.Now()
	for i := range floodCount {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Post(platform.apiURL+"/deploy", "application/json", bytes.NewReader(body))
			if err != nil {
				statuses[i] = -1 // the server closed the connection on the unread body
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-sampled
	after := rssMB(t)
	growth := float64(peak.Load()) - before
	t.Logf("RSS before %.0f MB, peak during the flood %d MB, after %.0f MB: growth %.0f MB (%d x %d MiB anonymous POST /deploy in %v)",
		before, peak.Load(), after, growth, floodCount, floodSize>>20, elapsed.Round(time.Millisecond))
	refused, closed := 0, 0
	for i, s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			refused++
		case -1:
			closed++
		default:
			t.Fatalf("request %d: status %d, want 401", i, s)
		}
	}
	t.Logf("%d answered 401, %d saw the connection closed on their unread body", refused, closed)
	if growth > 100 {
		t.Fatalf("RSS grew by %.0f MB under the anonymous flood, want at most 100", growth)
	}
}

// TestBadKeysDoNotLockOutValidKey: 12 requests with bad keys (malformed,
// unknown, and the admin key's id with a wrong secret) from 127.0.0.1,
// then the valid admin key from the same address gets 200.
func TestBadKeysDoNotLockOutValidKey(t *testing.T) {
	need(t)
	get := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, platform.apiURL+"/deployments", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if s := get(platform.adminKey); s != http.StatusOK {
		t.Fatalf("admin key before: %d", s)
	}
	id := platform.adminKey[len("dotdo_") : len("dotdo_")+12]
	wrongSecret := wellFormed(t, id)
	unknown := keyRE.FindString(ok(t, "keys", "create", "--name", "to-revoke", "--role", "viewer"))
	unknownID := unknown[len("dotdo_") : len("dotdo_")+12]
	ok(t, "keys", "revoke", unknownID)
	for i := range 12 {
		for _, bad := range []string{"dotdo_nope", wrongSecret, unknown, ""} {
			if s := get(bad); s != http.StatusUnauthorized && s != http.StatusTooManyRequests {
				t.Fatalf("bad key %d: %d", i, s)
			}
		}
	}
	if s := get(platform.adminKey); s != http.StatusOK {
		t.Fatalf("the valid admin key after 12 bad requests from its address: %d, want 200", s)
	}
	// The CLI, from the same address, too.
	wantExit(t, dotdo(t, platform.adminKey, nil, "deployments"), 0, "")
	// And a probe without a key gets the health answer.
	res, err := http.Get(platform.apiURL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `"status"`) {
		t.Fatalf("GET /health without a key = %d %s", res.StatusCode, b)
	}
}

// TestHardenedDefaults checks the rest of issue 13's figures on the running
// platform: database files 0600, Resolve refused on the public dispatcher
// port, a key with a ttl cannot create a key without one, and the audit
// trail verifies against an exported head.
func TestHardenedDefaults(t *testing.T) {
	need(t)
	for _, f := range []string{"dotdo.db", "dotdo.db-wal", "dotdo.db-shm", "audit.key"} {
		fi, err := os.Stat(filepath.Join(platform.dataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", f, fi.Mode().Perm())
		}
	}

	// Resolve: refused on the public port, answered on the operator's.
	r := dotdo(t, platform.adminKey, []string{"DOTDO_DISPATCHER_URL=" + platform.dispURL}, "routes", "resolve", "https://api.do/")
	if r.code == 0 {
		t.Fatalf("routes resolve on the public port answered: %s", r.stdout)
	}
	if out := ok(t, "routes", "resolve", "https://api.do/"); !strings.Contains(out, "worker") {
		t.Fatalf("routes resolve on the operator port printed %q", out)
	}

	// A key that expires cannot make one that does not.
	temp := keyRE.FindString(ok(t, "keys", "create", "--name", "temporary", "--role", "admin", "--ttl", "1h"))
	wantExit(t, dotdo(t, temp, nil, "keys", "create", "--name", "forever", "--role", "viewer"), cli.ExitPermissionDenied, "outlives")
	wantExit(t, dotdo(t, temp, nil, "keys", "create", "--name", "later", "--role", "viewer", "--ttl", "2h"), cli.ExitPermissionDenied, "outlives")
	wantExit(t, dotdo(t, temp, nil, "keys", "create", "--name", "shorter", "--role", "viewer", "--ttl", "30m"), 0, "")

	// The audit trail: keyed, and it holds the head exported earlier.
	out := ok(t, "audit", "head")
	var head struct {
		Seq   int64  `json:"seq"`
		MAC   string `json:"mac"`
		Keyed bool   `json:"keyed"`
	}
	if err := json.Unmarshal([]byte(out), &head); err != nil || head.Seq == 0 || len(head.MAC) != 64 || !head.Keyed {
		t.Fatalf("audit head printed %q (%v)", out, err)
	}
	file := filepath.Join(t.TempDir(), "head.json")
	testsupport.WriteFile(t, file, out, 0o600)
	ok(t, "deploy", "--service", "after-head", "--file", writeWorker(t, "x"))
	if out := ok(t, "audit", "verify", "--head", file); !strings.Contains(out, "intact") || !strings.Contains(out, "keyed") || !strings.Contains(out, "holds the head") {
		t.Fatalf("audit verify --head printed %q", out)
	}
	bad := fmt.Sprintf(`{"seq":%d,"mac":"%064d"}`, head.Seq, 0)
	testsupport.WriteFile(t, file, bad, 0o600)
	wantExit(t, dotdo(t, platform.adminKey, nil, "audit", "verify", "--head", file), 1, "exported head")
}

// wellFormed returns a well-formed token (valid checksum) for key id id
// with a secret nobody holds.
func wellFormed(t *testing.T, id string) string {
	t.Helper()
	k, err := apikey.FromParts(id, strings.Repeat("A", apikey.SecretLen))
	if err != nil {
		t.Fatal(err)
	}
	return k.Token
}
