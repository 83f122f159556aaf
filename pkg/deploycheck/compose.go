package deploycheck

import (
	"regexp"
	"strings"
)

// interpolation matches Compose's ${NAME}, ${NAME:-default},
// ${NAME-default}, ${NAME:?message} and ${NAME?message}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// Interpolation is one ${...} reference in a Compose value.
type Interpolation struct {
	Name     string
	Default  string // the value used when Name is unset (or empty, with ":")
	Required bool   // ${NAME:?message}: Compose refuses to start without it
}

// Interpolations lists the references in s.
func Interpolations(s string) []Interpolation {
	var out []Interpolation
	for _, m := range interpolation.FindAllStringSubmatch(s, -1) {
		it := Interpolation{Name: m[1]}
		switch {
		case strings.HasSuffix(m[2], "?"):
			it.Required = true
		case strings.HasSuffix(m[2], "-"):
			it.Default = m[3]
		}
		out = append(out, it)
	}
	return out
}

// ResolveDefaults replaces every reference in s by its default, giving the
// value Compose uses with an empty environment (required references become
// "<NAME>").
func ResolveDefaults(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(ref string) string {
		it := Interpolations(ref)[0]
		if it.Required {
			return "<" + it.Name + ">"
		}
		return it.Default
	})
}
