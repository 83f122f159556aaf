package deploycheck

import (
	"bufio"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// DockerIgnore decides which paths of the build context a .dockerignore
// excludes, with Docker's rules: patterns are matched against the path
// relative to the context (and against each of its parent directories),
// `**` matches any number of directories, `!` re-includes, and the last
// matching pattern wins.
type DockerIgnore struct {
	rules []ignoreRule
}

type ignoreRule struct {
	re      *regexp.Regexp
	include bool
	text    string
}

// ParseDockerIgnore reads .dockerignore content.
func ParseDockerIgnore(content string) (*DockerIgnore, error) {
	d := &DockerIgnore{}
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{text: line}
		if strings.HasPrefix(line, "!") {
			r.include = true
			line = strings.TrimSpace(line[1:])
		}
		line = path.Clean(strings.TrimPrefix(line, "/"))
		re, err := patternRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore %q: %w", r.text, err)
		}
		r.re = re
		d.rules = append(d.rules, r)
	}
	return d, sc.Err()
}

func patternRegexp(p string) (*regexp.Regexp, error) {
	var sb strings.Builder
	sb.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				sb.WriteString("(.*/)?")
			} else {
				sb.WriteString(".*")
			}
		case c == '*':
			sb.WriteString("[^/]*")
		case c == '?':
			sb.WriteString("[^/]")
		default:
			sb.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	sb.WriteString("$")
	return regexp.Compile(sb.String())
}

// Excluded reports whether the file at rel (slash-separated, relative to
// the context) is left out of the build context.
func (d *DockerIgnore) Excluded(rel string) bool {
	rel = path.Clean(rel)
	// The path and each parent: a pattern naming a directory covers
	// everything below it.
	var candidates []string
	for p := rel; p != "." && p != "/"; p = path.Dir(p) {
		candidates = append(candidates, p)
	}
	excluded := false
	for _, r := range d.rules {
		for _, c := range candidates {
			if r.re.MatchString(c) {
				excluded = !r.include
				break
			}
		}
	}
	return excluded
}
