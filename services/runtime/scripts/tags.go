package scripts

import (
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// MaxTags is the most tags one script may carry, as on Cloudflare.
const MaxTags = 8

// MaxTagLength is the longest tag accepted.
const MaxTagLength = 128

// ValidTag reports whether tag is acceptable: 1 to 128 printable characters
// without commas (the tag filter syntax separates tags with commas).
func ValidTag(tag string) bool {
	if tag == "" || len(tag) > MaxTagLength || !utf8.ValidString(tag) {
		return false
	}
	for _, r := range tag {
		if r == ',' || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ValidateTags checks a tag list: each tag valid, no more than MaxTags
// distinct tags. It returns the tags deduplicated, in their first order.
func ValidateTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if !ValidTag(t) {
			return nil, errors.New("invalid tag: tags are 1 to 128 printable characters without commas")
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, fmt.Errorf("too many tags: a script may have at most %d", MaxTags)
	}
	return out, nil
}

// SetTags replaces the script's tags.
func (s *Store) SetTags(ns, name string, tags []string) ([]string, error) {
	tags, err := ValidateTags(tags)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sc, err := s.updateScript(ns, name, func(f *scriptFile) error {
		f.Tags = tags
		return nil
	})
	return sc.Tags, err
}

// AddTag adds one tag to the script (no-op when present).
func (s *Store) AddTag(ns, name, tag string) ([]string, error) {
	sc, err := s.updateScript(ns, name, func(f *scriptFile) error {
		tags, err := ValidateTags(append(f.Tags, tag))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		f.Tags = tags
		return nil
	})
	return sc.Tags, err
}

// RemoveTag removes one tag from the script (no-op when absent).
func (s *Store) RemoveTag(ns, name, tag string) ([]string, error) {
	sc, err := s.updateScript(ns, name, func(f *scriptFile) error {
		f.Tags = slices.DeleteFunc(f.Tags, func(t string) bool { return t == tag })
		return nil
	})
	return sc.Tags, err
}
