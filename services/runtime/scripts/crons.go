package scripts

import (
	"fmt"
	"slices"

	"github.com/dot-do/platform/internal/cron"
)

// MaxCrons bounds the cron triggers of a script.
const MaxCrons = 16

// SetCrons replaces the cron triggers of the script's current version
// (5-field cron expressions, UTC). A new version starts without any: the
// deploy that uploads it sets them again.
func (s *Store) SetCrons(ns, name string, crons []string) (Script, error) {
	if len(crons) > MaxCrons {
		return Script{}, fmt.Errorf("%w: %d cron triggers, more than %d", ErrInvalid, len(crons), MaxCrons)
	}
	for _, c := range crons {
		if _, err := cron.Parse(c); err != nil {
			return Script{}, fmt.Errorf("%w: cron %v", ErrInvalid, err)
		}
	}
	return s.updateScript(ns, name, func(f *scriptFile) error {
		f.Current.Crons = slices.Clone(crons)
		return nil
	})
}
