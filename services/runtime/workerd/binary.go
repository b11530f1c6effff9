package workerd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// EnvBinary is the environment variable that names the workerd binary,
// overriding the search under node_modules.
const EnvBinary = "DOTDO_WORKERD"

// ErrBinaryNotFound means no workerd binary could be found.
var ErrBinaryNotFound = errors.New("workerd binary not found (set " + EnvBinary + " or run `npm install` so that node_modules/.bin/workerd exists)")

// FindBinary returns the workerd binary to run. An explicit path wins, then
// $DOTDO_WORKERD, then node_modules/.bin/workerd in dir or the nearest
// parent directory that has one. When the file found is the npm package's
// JavaScript launcher rather than the native binary, the platform package's
// binary (node_modules/@cloudflare/workerd-<os>-<arch>/bin/workerd) is used
// instead, so that the supervisor signals and measures workerd itself.
func FindBinary(explicit, dir string) (string, error) {
	if explicit != "" {
		return checkBinary(explicit)
	}
	if env := os.Getenv(EnvBinary); env != "" {
		return checkBinary(env)
	}
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		nm := filepath.Join(dir, "node_modules")
		if p, err := checkBinary(filepath.Join(nm, ".bin", "workerd")); err == nil {
			if !isScript(p) {
				return p, nil
			}
			if native, err := checkBinary(filepath.Join(nm, "@cloudflare", platformPackage(), "bin", "workerd")); err == nil {
				return native, nil
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrBinaryNotFound
		}
		dir = parent
	}
}

func platformPackage() string {
	arch := runtime.GOARCH
	if arch == "amd64" {
		arch = "64"
	}
	return "workerd-" + runtime.GOOS + "-" + arch
}

func checkBinary(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBinaryNotFound, p, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBinaryNotFound, p, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s is not an executable file", ErrBinaryNotFound, p)
	}
	return real, nil
}

func isScript(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return bytes.Equal(head, []byte("#!"))
}
