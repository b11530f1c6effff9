package cli

import (
	"context"
	"os/exec"
	"strings"
	"time"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
)

// sourceMetadata is where a deploy comes from: each of commit, branch and
// author from its flag, else from GitHub Actions' GITHUB_SHA,
// GITHUB_REF_NAME and GITHUB_ACTOR, else from the git checkout holding dir
// (HEAD, its branch, git's user.name or HEAD's author). Nil when none is
// known.
func sourceMetadata(ctx context.Context, e *Env, o deployOptions, dir string) *deployv1.Metadata {
	md := &deployv1.Metadata{Commit: o.commit, Branch: o.branch, Author: o.author}
	fill := func(v *string, env string, git ...[]string) {
		if *v == "" {
			*v = e.Getenv(env)
		}
		for _, args := range git {
			if *v == "" {
				*v = gitOutput(ctx, dir, args...)
			}
		}
	}
	fill(&md.Commit, "GITHUB_SHA", []string{"rev-parse", "HEAD"})
	fill(&md.Branch, "GITHUB_REF_NAME", []string{"symbolic-ref", "--short", "-q", "HEAD"})
	fill(&md.Author, "GITHUB_ACTOR", []string{"config", "user.name"}, []string{"log", "-1", "--format=%an"})
	if md.Commit == "" && md.Branch == "" && md.Author == "" {
		return nil
	}
	return md
}

// gitOutput runs git in dir and returns its first line of output, or ""
// when git is missing, fails or takes over 5 s.
func gitOutput(ctx context.Context, dir string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if dir == "" {
		dir = "."
	}
	out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
