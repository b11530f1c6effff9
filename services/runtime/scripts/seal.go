package scripts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Secret values are sealed at rest: script.json holds each one encrypted
// with AES-256-GCM under the data directory's key file (KeyFile, 32 random
// bytes, mode 0600, created when the first secret is put), bound to its
// namespace, script and name (the additional data), so a sealed value
// copied to another secret does not open. Values are opened only in
// memory, for the processes that serve the script.

// KeyFile is the name of the key file in the data directory.
const KeyFile = "secrets.key"

const (
	keyLen     = 32
	sealPrefix = "v1:"
)

// ErrSealed means a sealed secret could not be opened: the key file is
// missing or another one, or the value was altered.
var ErrSealed = errors.New("secret cannot be opened with this data directory's key")

// sealer seals and opens secret values with the key of a data directory.
type sealer struct {
	path string

	mu   sync.Mutex
	aead cipher.AEAD // nil until the key is loaded or created
}

// get returns the AEAD, loading the key file, or creating it when create
// is set and it does not exist.
func (s *sealer) get(create bool) (cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aead != nil {
		return s.aead, nil
	}
	key, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) && create {
		key = make([]byte, keyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		err = writeFileAtomic(s.path, key)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if len(key) != keyLen {
		return nil, fmt.Errorf("secrets key %s: want %d bytes, have %d", filepath.Base(s.path), keyLen, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s.aead = aead
	return aead, nil
}

func sealAD(ns, script, name string) []byte { return []byte(ns + "/" + script + "/" + name) }

// seal encrypts value for the secret name of ns/script.
func (s *sealer) seal(ns, script, name, value string) (string, error) {
	aead, err := s.get(true)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(value)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(value), sealAD(ns, script, name))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open decrypts what seal returned for the same secret.
func (s *sealer) open(ns, script, name, sealed string) (string, error) {
	aead, err := s.get(false)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSealed, err)
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, sealPrefix))
	if !strings.HasPrefix(sealed, sealPrefix) || err != nil || len(raw) < aead.NonceSize() {
		return "", fmt.Errorf("%w: secret %s of %s/%s is malformed", ErrSealed, name, ns, script)
	}
	n := aead.NonceSize()
	v, err := aead.Open(nil, raw[:n], raw[n:], sealAD(ns, script, name))
	if err != nil {
		return "", fmt.Errorf("%w: secret %s of %s/%s", ErrSealed, name, ns, script)
	}
	return string(v), nil
}

// bindingAD is the additional data of a secret_text binding's value, apart
// from the script's secrets of the same name.
func bindingAD(name string) string { return "binding:" + name }

// sealBindings returns bs with the value of each secret_text binding
// sealed, for the disk.
func (s *sealer) sealBindings(ns, script string, bs []Binding) ([]Binding, error) {
	var out []Binding
	for i, b := range bs {
		if b.Type != BindingSecretText {
			continue
		}
		if out == nil {
			out = append([]Binding(nil), bs...)
		}
		sealed, err := s.seal(ns, script, bindingAD(b.Name), b.Text)
		if err != nil {
			return nil, err
		}
		out[i].Text = sealed
	}
	if out == nil {
		return bs, nil
	}
	return out, nil
}

// openBindings reverses sealBindings. A secret_text value that is not
// sealed (written by a runtime before sealing) is returned as it is, and
// reported by legacy.
func (s *sealer) openBindings(ns, script string, bs []Binding) (out []Binding, legacy bool, err error) {
	for i, b := range bs {
		if b.Type != BindingSecretText {
			continue
		}
		if !strings.HasPrefix(b.Text, sealPrefix) {
			legacy = true
			continue
		}
		if out == nil {
			out = append([]Binding(nil), bs...)
		}
		plain, err := s.open(ns, script, bindingAD(b.Name), b.Text)
		if err != nil {
			return nil, false, err
		}
		out[i].Text = plain
	}
	if out == nil {
		return bs, legacy, nil
	}
	return out, legacy, nil
}
