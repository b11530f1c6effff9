package auth_test

import (
	"testing"

	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/auth/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) auth.KeyStore { return auth.NewMemStore() })
}
