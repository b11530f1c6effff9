package scripts

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTags is the most tags one script may carry, as on Cloudflare.
const MaxTags = 8

// MaxTagLength is the longest tag accepted.
const MaxTagLength = 128

// MaxModuleNameLength is the longest module (file) name accepted.
const MaxModuleNameLength = 256

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

// ValidModuleName reports whether name is acceptable as a module name: a
// relative slash-separated path of printable characters without empty, "."
// or ".." segments. Modules are stored by index, never by name, so this
// guards the module graph inside workerd rather than the file system.
func ValidModuleName(name string) bool {
	if name == "" || len(name) > MaxModuleNameLength || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '\\' || !unicode.IsPrint(r) {
			return false
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
