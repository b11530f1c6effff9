// Package compose_test checks docker-compose.yml and the Dockerfile without
// a Docker engine: it loads the compose file with compose-go (as `docker
// compose` does) and checks every service against the code: the binaries
// exist under cmd/ and are built and installed by the Dockerfile, the
// addresses and URLs match the services' default ports, every DOTDO_*
// variable is one the code reads, health checks and healthy dependencies,
// network isolation, published ports, and that secrets come only from
// gitignored env_files.
package compose_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/telemetry"
)

// root is the repository root, relative to this package.
const root = "../.."

// platformService describes one of the five services as the code defines
// it.
type platformService struct {
	addr     string   // default address (internal/config)
	more     []string // other default addresses it listens on
	addrEnv  string   // variable of the listen address (internal/boot)
	required []string // variables the service needs in compose
	health   string   // path of the health check ("" = gRPC health)
}

var platform = map[string]platformService{
	"deploy":     {config.DefaultDeployAddr, nil, "DOTDO_DEPLOY_ADDR", []string{"DOTDO_AUTH_URL", "DOTDO_DB_URL"}, ""},
	"auth":       {config.DefaultAuthAddr, nil, "DOTDO_AUTH_ADDR", []string{"DOTDO_DB_URL"}, ""},
	"db":         {config.DefaultDBAddr, nil, "DOTDO_DB_ADDR", []string{"DOTDO_DATABASE_URL"}, ""},
	"dispatcher": {config.DefaultDispatcherAddr, []string{config.DefaultDispatcherOperatorAddr}, "DOTDO_DISPATCHER_ADDR", nil, ""},
	"runtime":    {config.DefaultRuntimeAddr, nil, "DOTDO_RUNTIME_ADDR", []string{"DOTDO_WORKERD"}, "/healthz"},
}

// binaries maps each compose service built from the Dockerfile to its
// binary under cmd/.
var binaries = map[string]string{
	"deploy": "deploy", "auth": "auth", "db": "db", "dispatcher": "dispatcher", "runtime": "runtime",
	"cli": "dotdo",
}

// pending names services whose binary is still being written: while
// cmd/<name> does not exist, the checks that need its code are skipped
// (and say so); once it exists they apply.
var pending = map[string]string{
	"dispatcher": "cmd/dispatcher is not in the tree yet",
}

// secretsNeeded are the secret variables each service must get from an
// env_file.
var secretsNeeded = map[string][]string{
	// Each internal caller's credential goes to the caller and to the
	// services it calls, as credential.DefaultPolicy grants them.
	"deploy":     {credentialVar(credential.Deploy), "CLOUDFLARE_API_TOKEN"},
	"auth":       {credentialVar(credential.Auth), credentialVar(credential.Deploy), credentialVar(credential.Bootstrap)},
	"db":         {credentialVar(credential.Deploy), credentialVar(credential.Auth), credentialVar(credential.Dispatcher), "DOTDO_AUDIT_KEY", "PGPASSWORD"},
	"dispatcher": {credentialVar(credential.Dispatcher), "DOTDO_INVOKE_TOKEN"},
	"runtime":    {"DOTDO_INVOKE_TOKEN", "DOTDO_RUNTIME_TOKEN"},
	"postgres":   {"POSTGRES_PASSWORD"},
	"cli":        {credentialVar(credential.Bootstrap)},
}

// secretsForbidden are credentials a service must not hold: the runtime
// runs untrusted workers, so it gets no internal credential; the public
// dispatcher holds only its own; the cli only the bootstrap credential;
// the audit key stays with db.
var secretsForbidden = map[string][]string{
	"runtime":    append(credentialVars(credential.Callers()...), "DOTDO_AUDIT_KEY", "DOTDO_INTERNAL_TOKEN"),
	"dispatcher": append(credentialVars(credential.Deploy, credential.Auth, credential.Bootstrap), "DOTDO_AUDIT_KEY", "DOTDO_INTERNAL_TOKEN"),
	"cli":        append(credentialVars(credential.Deploy, credential.Auth, credential.Dispatcher), "DOTDO_AUDIT_KEY", "DOTDO_INTERNAL_TOKEN"),
	"deploy":     {credentialVar(credential.Dispatcher), credentialVar(credential.Bootstrap), "DOTDO_AUDIT_KEY", "DOTDO_INTERNAL_TOKEN"},
	"auth":       {credentialVar(credential.Dispatcher), "DOTDO_AUDIT_KEY", "DOTDO_INTERNAL_TOKEN"},
	"db":         {credentialVar(credential.Bootstrap), "DOTDO_INTERNAL_TOKEN"},
}

func credentialVar(c credential.Caller) string { return c.EnvVar() }

func credentialVars(cs ...credential.Caller) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.EnvVar())
	}
	return out
}

// TestCredentialsMatchPolicy: every service is given the credentials of
// exactly the internal callers the policy lets call it, and its own.
func TestCredentialsMatchPolicy(t *testing.T) {
	policy := credential.DefaultPolicy()
	for service, name := range map[string]string{"db": "dotdo.db.v1.DBService", "auth": "dotdo.auth.v1.AuthService"} {
		for _, c := range policy.CallersOf(name) {
			if !slices.Contains(secretsNeeded[service], c.EnvVar()) {
				t.Errorf("%s is called by %s, but is not given %s", service, c, c.EnvVar())
			}
		}
	}
}

var (
	publicServices   = []string{"deploy", "dispatcher"}
	internalServices = []string{"auth", "db", "runtime", "postgres"}
	// secretName matches variable names that hold secrets.
	secretName = regexp.MustCompile(`(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE|CREDENTIAL)`)
	// standardEnv are variables read by libraries rather than by literals
	// in our code: OpenTelemetry's SDK and exporter, and PostgreSQL's.
	standardEnv = regexp.MustCompile(`^(OTEL_(SERVICE_NAME|RESOURCE_ATTRIBUTES|TRACES_(EXPORTER|SAMPLER|SAMPLER_ARG)|SDK_DISABLED|BSP_[A-Z_]+|EXPORTER_OTLP_(TRACES_)?[A-Z_]+)|PG[A-Z]+)$`)
)

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, "docker-compose.yml")}},
		Environment: types.Mapping{}, // nothing from the caller's environment
	}, func(o *loader.Options) {
		o.SetProjectName("dotdo", true)
		o.Profiles = []string{"*"} // the cli tool too
		// env_files hold the secrets and are not committed: check their
		// examples instead of reading them.
		o.SkipResolveEnvironment = true
	})
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

func env(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// skipPending skips a check of name's code while name is pending.
func skipPending(t *testing.T, name string) {
	t.Helper()
	if why, ok := pending[name]; ok && !exists(filepath.Join(root, "cmd", name, "main.go")) {
		t.Skipf("%s: %s; its compose service is only partly checked", name, why)
	}
}

func TestServicesMatchBinaries(t *testing.T) {
	p := loadProject(t)
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(dockerfile)
	for name, binary := range binaries {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			if s.Build == nil || s.Build.Target != binary {
				t.Errorf("build should be the Dockerfile's %q target, is %+v", binary, s.Build)
			}
			if len(s.Entrypoint) == 0 {
				t.Fatalf("no entrypoint")
			}
			bin := s.Entrypoint[0]
			if bin != "/usr/local/bin/"+binary {
				t.Errorf("entrypoint %q, want /usr/local/bin/%s", bin, binary)
			}
			// The Dockerfile builds ./cmd/<binary>, and the stage installs
			// it where the entrypoint says.
			if !regexp.MustCompile(`(?s)go build .*\./cmd/` + binary + `\b`).MatchString(df) {
				t.Errorf("the Dockerfile does not build ./cmd/%s", binary)
			}
			stage := dockerStage(df, binary)
			if stage == "" {
				t.Fatalf("the Dockerfile has no stage %q", binary)
			}
			if !regexp.MustCompile(`/out/`+binary+`\b`).MatchString(stage) || !strings.Contains(stage, `ENTRYPOINT ["`+bin+`"]`) {
				t.Errorf("stage %q does not install /out/%s as %s", binary, binary, bin)
			}
			if _, isPlatform := platform[name]; isPlatform && !strings.Contains(stage, "/out/healthcheck") {
				t.Errorf("stage %q lacks the healthcheck binary", binary)
			}
			if !regexp.MustCompile(`(?m)^USER 65532`).MatchString(stage) {
				t.Errorf("stage %q does not run as the non-root user", name)
			}
			skipPending(t, name)
			if !exists(filepath.Join(root, "cmd", filepath.Base(bin), "main.go")) {
				t.Errorf("entrypoint %s names no binary under cmd/", bin)
			}
		})
	}
	if !exists(filepath.Join(root, "ops", "healthcheck", "main.go")) || !strings.Contains(df, "./ops/healthcheck") {
		t.Error("the Dockerfile does not build ./ops/healthcheck")
	}
	if !regexp.MustCompile(`CGO_ENABLED=0`).MatchString(df) {
		t.Error("the Go build stage is not static (CGO_ENABLED=0)")
	}
	runtime := dockerStage(df, "runtime")
	if !strings.Contains(runtime, "/usr/local/bin/workerd") || !strings.Contains(runtime, "DOTDO_WORKERD=/usr/local/bin/workerd") {
		t.Error("the runtime stage does not install workerd where DOTDO_WORKERD points")
	}
}

// dockerStage returns the text of the Dockerfile stage named name.
func dockerStage(df, name string) string {
	re := regexp.MustCompile(`(?m)^FROM .* AS ` + regexp.QuoteMeta(name) + `\s*$`)
	loc := re.FindStringIndex(df)
	if loc == nil {
		return ""
	}
	rest := df[loc[1]:]
	if next := regexp.MustCompile(`(?m)^FROM `).FindStringIndex(rest); next != nil {
		rest = rest[:next[0]]
	}
	return rest
}

// knownEnv collects the DOTDO_*, CLOUDFLARE_* and OTEL_* names the code
// reads: string literals in the non-test Go files of cmd/, internal/ and
// services/.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"((?:DOTDO|CLOUDFLARE|OTEL)_[A-Z0-9_]+)"`)
	known := map[string]bool{}
	for _, dir := range []string{"cmd", "internal", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				known[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return known
}

func TestEnvironment(t *testing.T) {
	p := loadProject(t)
	known := knownEnv(t)
	for name, ps := range platform {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			// The listen address: reachable from the other containers, on
			// the service's usual port.
			addr, ok := env(s, ps.addrEnv)
			if !ok {
				t.Errorf("%s is not set", ps.addrEnv)
			} else if host, prt, err := net.SplitHostPort(addr); err != nil || host != "0.0.0.0" || prt != port(t, ps.addr) {
				t.Errorf("%s=%q, want 0.0.0.0:%s", ps.addrEnv, addr, port(t, ps.addr))
			}
			for _, k := range ps.required {
				if v, ok := env(s, k); !ok || v == "" {
					t.Errorf("%s is not set", k)
				}
			}
			want := "0.0.0.0:" + strconv.Itoa(telemetry.DefaultMetricsPort)
			if v, _ := env(s, telemetry.EnvMetricsAddr); v != want {
				t.Errorf("%s=%q, want %q", telemetry.EnvMetricsAddr, v, want)
			}
			if v, _ := env(s, "OTEL_EXPORTER_OTLP_ENDPOINT"); v == "" {
				t.Error("OTEL_EXPORTER_OTLP_ENDPOINT is not set: its spans go nowhere")
			}
			if v, _ := env(s, "DOTDO_DATA_DIR"); v != "/data" {
				t.Errorf("DOTDO_DATA_DIR=%q, want /data (the images' writable data directory)", v)
			}

			checkURLs(t, p, s)

			skipPending(t, name)
			for k := range s.Environment {
				if !known[k] && !standardEnv.MatchString(k) {
					t.Errorf("%s is read by no code under cmd/, internal/ or services/ (a typo?)", k)
				}
			}
		})
	}

	t.Run("cli", func(t *testing.T) {
		s := service(t, p, "cli")
		checkURLs(t, p, s)
		for k := range s.Environment {
			if !known[k] {
				t.Errorf("%s is read by no code under cmd/, internal/ or services/ (a typo?)", k)
			}
		}
	})
}

// checkURLs checks every URL of s's environment that names another
// service: that service exists, listens on that port, shares a network
// with s, and is a dependency s waits on to be healthy.
func checkURLs(t *testing.T, p *types.Project, s types.ServiceConfig) {
	t.Helper()
	name := s.Name
	for k, v := range s.Environment {
		if v == nil {
			continue
		}
		u, err := url.Parse(*v)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "postgres") {
			continue
		}
		target, ok := p.Services[u.Hostname()]
		if !ok {
			t.Errorf("%s=%s names no compose service", k, *v)
			continue
		}
		if !shareNetwork(s, target) {
			t.Errorf("%s=%s: %s and %s share no network", k, *v, name, target.Name)
		}
		if tp, ok := platform[target.Name]; ok {
			ports := []string{port(t, tp.addr)}
			for _, a := range tp.more {
				ports = append(ports, port(t, a))
			}
			if !slices.Contains(ports, u.Port()) {
				t.Errorf("%s=%s: %s listens on ports %v", k, *v, target.Name, ports)
			}
			if dep, ok := s.DependsOn[target.Name]; !ok || dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s calls %s (%s) but does not depend on it being healthy", name, target.Name, k)
			}
		}
	}
}

func shareNetwork(a, b types.ServiceConfig) bool {
	for n := range a.Networks {
		if _, ok := b.Networks[n]; ok {
			return true
		}
	}
	return false
}

func TestHealthchecksAndDependencies(t *testing.T) {
	p := loadProject(t)
	for name, ps := range platform {
		s := service(t, p, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 3 {
			t.Errorf("%s: no health check", name)
			continue
		}
		if hc.Test[0] != "CMD" || hc.Test[1] != "/usr/local/bin/healthcheck" {
			t.Errorf("%s: health check %v, want [CMD /usr/local/bin/healthcheck URL]", name, hc.Test)
			continue
		}
		want := "http://127.0.0.1:" + port(t, ps.addr) + ps.health
		if got := hc.Test[len(hc.Test)-1]; got != want {
			t.Errorf("%s: health check URL %s, want %s", name, got, want)
		}
	}
	for name, s := range p.Services {
		_, isPlatform := platform[name]
		for dep, cfg := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			hasHealth := target.HealthCheck != nil && !target.HealthCheck.Disable
			if isPlatform && cfg.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with condition %q, want service_healthy", name, dep, cfg.Condition)
			}
			if cfg.Condition == types.ServiceConditionHealthy && !hasHealth {
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			}
		}
	}
	if s := service(t, p, "db"); s.DependsOn["postgres"].Condition != types.ServiceConditionHealthy {
		t.Error("db does not wait for postgres to be healthy")
	}
}

func TestNetworksAndPorts(t *testing.T) {
	p := loadProject(t)
	internal, ok := p.Networks["internal"]
	if !ok || !internal.Internal {
		t.Fatalf("network internal must exist with internal: true, is %+v", internal)
	}
	public, ok := p.Networks["public"]
	if !ok || public.Internal {
		t.Fatalf("network public must exist and reach outside, is %+v", public)
	}
	for _, name := range internalServices {
		s := service(t, p, name)
		var nets []string
		for n := range s.Networks {
			nets = append(nets, n)
		}
		if !slices.Equal(nets, []string{"internal"}) {
			t.Errorf("%s is on networks %v, want only internal", name, nets)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes ports %v; internal services publish none", name, s.Ports)
		}
	}
	for _, name := range publicServices {
		s := service(t, p, name)
		for _, n := range []string{"public", "internal"} {
			if _, ok := s.Networks[n]; !ok {
				t.Errorf("%s is not on network %s", name, n)
			}
		}
		want := port(t, platform[name].addr)
		var published bool
		for _, pc := range s.Ports {
			if strconv.Itoa(int(pc.Target)) == want && pc.Published == want {
				published = true
			}
		}
		if !published {
			t.Errorf("%s does not publish port %s: %+v", name, want, s.Ports)
		}
	}
	// Everything published is bound to loopback by default.
	for name, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1", name, pc.Published, pc.HostIP)
			}
		}
		// Other networks than public/internal are for the ops UIs only.
		for n := range s.Networks {
			if n == "ops" && slices.Contains(slices.Concat(internalServices, publicServices), name) {
				t.Errorf("%s is on the ops network", name)
			}
		}
	}
	prom := service(t, p, "prometheus")
	for name := range platform {
		if !shareNetwork(prom, service(t, p, name)) {
			t.Errorf("prometheus cannot reach %s", name)
		}
	}
}

// envFileKeys parses a committed env_file example.
func envFileKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (commit an example next to every env_file)", err)
	}
	defer f.Close()
	m, err := dotenv.ParseWithLookup(f, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestSecretsOnlyFromEnvFiles(t *testing.T) {
	p := loadProject(t)
	absRoot, _ := filepath.Abs(root)
	secretsDir := filepath.Join(absRoot, "ops", "secrets")
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if secretName.MatchString(k) {
				t.Errorf("%s: %s is a secret and must come from an env_file, not environment", name, k)
			}
			if v == nil {
				continue
			}
			if u, err := url.Parse(*v); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					t.Errorf("%s: %s holds a password", name, k)
				}
			}
			if strings.Contains(*v, "${") || strings.Contains(*v, "$$") {
				t.Errorf("%s: %s is interpolated; secrets come from env_file", name, k)
			}
		}
		provided := map[string]bool{}
		for _, ef := range s.EnvFiles {
			if filepath.Dir(ef.Path) != secretsDir || !strings.HasSuffix(ef.Path, ".env") {
				t.Errorf("%s: env_file %s is not ops/secrets/*.env", name, ef.Path)
				continue
			}
			if !bool(ef.Required) {
				t.Errorf("%s: env_file %s should be required, so a missing secret stops compose", name, ef.Path)
			}
			for k, v := range envFileKeys(t, ef.Path+".example") {
				provided[k] = true
				if v != "" {
					t.Errorf("%s.example: %s has a value; examples hold none", filepath.Base(ef.Path), k)
				}
			}
			checkIgnored(t, absRoot, ef.Path)
		}
		for _, k := range secretsNeeded[name] {
			if !provided[k] {
				t.Errorf("%s: no env_file provides %s", name, k)
			}
		}
		for _, k := range secretsForbidden[name] {
			if provided[k] {
				t.Errorf("%s: an env_file gives it %s, which it must not hold", name, k)
			}
		}
	}
	// The raw file names no secret value either.
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		code, _, _ := strings.Cut(line, "#")
		if regexp.MustCompile(`dotdo_[a-z]+_[A-Za-z0-9_-]{20,}|[A-Za-z0-9_-]{43}`).MatchString(code) {
			t.Errorf("docker-compose.yml: line looks like a credential: %q", line)
		}
	}
}

// checkIgnored makes sure a real secrets file can never be committed.
func checkIgnored(t *testing.T, repo, path string) {
	t.Helper()
	gi, err := os.ReadFile(filepath.Join(filepath.Dir(path), ".gitignore"))
	if err != nil || !slices.Contains(strings.Fields(string(gi)), "*.env") {
		t.Errorf("%s: ops/secrets/.gitignore must ignore *.env", path)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return
	}
	cmd := exec.Command("git", "-C", repo, "check-ignore", "-q", "--no-index", path)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			t.Errorf("git does not ignore %s", path)
		}
		// 128: not a git work tree (an exported copy): the .gitignore
		// check above stands.
	}
}

func TestThirdPartyImagesPinned(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		if s.Build != nil {
			continue
		}
		_, tag, ok := strings.Cut(s.Image, ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
}

func TestOpsConfigMounted(t *testing.T) {
	p := loadProject(t)
	absRoot, _ := filepath.Abs(root)
	mounts := map[string]string{
		"prometheus":     "ops/prometheus/prometheus.yml ops/prometheus/alerts.yml",
		"otel-collector": "ops/otel-collector.yaml",
	}
	for name, files := range mounts {
		s := service(t, p, name)
		for _, f := range strings.Fields(files) {
			src := filepath.Join(absRoot, f)
			if !exists(src) {
				t.Errorf("%s is missing", f)
			}
			found := false
			for _, v := range s.Volumes {
				found = found || (v.Source == src && v.ReadOnly)
			}
			if !found {
				t.Errorf("%s does not mount %s read-only", name, f)
			}
		}
	}
	// The services' OTLP endpoint is the collector, which forwards to
	// Jaeger.
	for name := range platform {
		v, _ := env(service(t, p, name), "OTEL_EXPORTER_OTLP_ENDPOINT")
		if u, err := url.Parse(v); err != nil || u.Hostname() != "otel-collector" || u.Port() != "4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want the collector's OTLP/HTTP port", name, v)
		}
	}
	col, err := os.ReadFile(filepath.Join(root, "ops", "otel-collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(col), "endpoint: jaeger:4317") || !strings.Contains(string(col), "0.0.0.0:4318") {
		t.Error("ops/otel-collector.yaml should receive OTLP/HTTP on 4318 and export to jaeger:4317")
	}
}
