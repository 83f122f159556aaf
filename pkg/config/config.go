// Package config reads a service's settings from environment variables and
// from command-line flags that mirror them. Every variable is registered
// with its default and a description as it is read, so a service can print
// its own table (-help) and the README table can be checked against the
// code. Errors name the variable; all of them are reported at once.
//
// Secrets (Env.Secret) come only from the environment or from a file named
// by the variable with _FILE appended (WANOTIFY_WEBHOOK_SECRET_FILE, as
// Kubernetes and Docker mount secrets), never from a flag: a flag's value
// is visible to everyone on the machine in ps and /proc/*/cmdline. A
// secret given as a flag is a configuration error.
//
// Settings that are accepted but deserve an operator's attention (a
// password sent in clear, certificates not verified) are recorded with
// Env.Warn; the service logs them at start.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Var describes one configuration variable.
type Var struct {
	Name        string
	Default     string
	Description string
	Secret      bool
}

var (
	registryMu sync.Mutex
	registry   = map[string]Var{}
)

// Registered returns every variable read so far in this process, sorted.
func Registered() []Var {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Var, 0, len(registry))
	for _, v := range registry {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Env reads variables. Flags given as --name=value or --name value, where
// name is the variable without its WANOTIFY_ prefix in lower case with
// dashes (WANOTIFY_KAFKA_BROKERS ↔ --kafka-brokers), win over the
// environment.
type Env struct {
	lookup   func(string) (string, bool)
	flags    map[string]string
	errs     []error
	warnings []Warning
	Help     bool
	// HelpMarkdown asks for the variables as a Markdown table
	// (--help-markdown), which README's configuration table is built from.
	HelpMarkdown bool
}

// FromEnv reads the process environment and os.Args.
func FromEnv() *Env { return New(os.LookupEnv, os.Args[1:]) }

// New reads from lookup and args (args may be nil).
func New(lookup func(string) (string, bool), args []string) *Env {
	e := &Env{lookup: lookup, flags: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "-help" || a == "--help" {
			e.Help = true
			continue
		}
		if a == "--help-markdown" {
			e.Help, e.HelpMarkdown = true, true
			continue
		}
		if !strings.HasPrefix(a, "-") {
			e.errs = append(e.errs, fmt.Errorf("unexpected argument %q", a))
			continue
		}
		name := strings.TrimLeft(a, "-")
		val, ok := "", false
		if k, v, found := strings.Cut(name, "="); found {
			name, val, ok = k, v, true
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			val, ok = args[i+1], true
			i++
		}
		if !ok {
			e.errs = append(e.errs, fmt.Errorf("flag --%s needs a value", name))
			continue
		}
		e.flags["WANOTIFY_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = val
	}
	return e
}

// FlagName is the flag that mirrors variable name.
func FlagName(name string) string {
	return "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "WANOTIFY_")), "_", "-")
}

func (e *Env) get(name, def, desc string, secret bool) (string, bool) {
	registryMu.Lock()
	registry[name] = Var{Name: name, Default: def, Description: desc, Secret: secret}
	registryMu.Unlock()
	if v, ok := e.flags[name]; ok {
		delete(e.flags, name)
		if secret {
			e.Fail(name, "secrets are not accepted as flags (%s is visible to every user in ps); set %s or %s_FILE in the environment",
				FlagName(name), name, name)
			return "", false
		}
		return v, true
	}
	if v, ok := e.lookup(name); ok {
		return v, true
	}
	return def, false
}

// Fail records an error about variable name (for checks across fields).
func (e *Env) Fail(name string, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String reads a string.
func (e *Env) String(name, def, desc string) string {
	v, _ := e.get(name, def, desc, false)
	return v
}

// SecretFileSuffix names the variable that points to a file holding a
// secret: WANOTIFY_X_FILE for WANOTIFY_X.
const SecretFileSuffix = "_FILE"

// Secret reads a string that must never be logged or printed, from the
// environment or from the file named by name+"_FILE" (one trailing
// newline removed); never from a flag.
func (e *Env) Secret(name, desc string) string {
	v, set := e.get(name, "", desc+" (or "+name+SecretFileSuffix+": a file holding it)", true)
	fileVar := name + SecretFileSuffix
	if path, ok := e.flags[fileVar]; ok { // a path is no secret
		delete(e.flags, fileVar)
		return e.secretFile(name, fileVar, path, set, v)
	}
	if path, ok := e.lookup(fileVar); ok && path != "" {
		return e.secretFile(name, fileVar, path, set, v)
	}
	return v
}

func (e *Env) secretFile(name, fileVar, path string, set bool, v string) string {
	if set && v != "" {
		e.Fail(fileVar, "set both %s and %s; set one", name, fileVar)
		return v
	}
	b, err := os.ReadFile(path)
	if err != nil {
		e.Fail(fileVar, "cannot read the secret: %v", err)
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
}

// Warning is a setting that was accepted but that an operator should
// know about, named by its variable.
type Warning struct {
	Name    string
	Message string
}

// Warn records a warning about variable name, for the service to log at
// start.
func (e *Env) Warn(name, format string, args ...any) {
	for _, w := range e.warnings {
		if w.Name == name {
			return // several components read the same variable
		}
	}
	e.warnings = append(e.warnings, Warning{Name: name, Message: fmt.Sprintf(format, args...)})
}

// Warnings returns the warnings recorded so far.
func (e *Env) Warnings() []Warning { return append([]Warning(nil), e.warnings...) }

// Int reads an integer.
func (e *Env) Int(name string, def int, desc string) int {
	v, set := e.get(name, strconv.Itoa(def), desc, false)
	if !set {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		e.Fail(name, "%q is not an integer", v)
		return def
	}
	return n
}

// Float reads a floating-point number.
func (e *Env) Float(name string, def float64, desc string) float64 {
	v, set := e.get(name, strconv.FormatFloat(def, 'f', -1, 64), desc, false)
	if !set {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		e.Fail(name, "%q is not a number", v)
		return def
	}
	return f
}

// Bool reads a boolean (true/false/1/0/yes/no).
func (e *Env) Bool(name string, def bool, desc string) bool {
	v, set := e.get(name, strconv.FormatBool(def), desc, false)
	if !set {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off", "":
		return false
	}
	e.Fail(name, "%q is not a boolean", v)
	return def
}

// Duration reads a Go duration ("250ms", "5s").
func (e *Env) Duration(name string, def time.Duration, desc string) time.Duration {
	v, set := e.get(name, def.String(), desc, false)
	if !set {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		e.Fail(name, "%q is not a duration (e.g. 500ms, 5s)", v)
		return def
	}
	return d
}

// List reads a comma-separated list, trimming blanks.
func (e *Env) List(name string, def []string, desc string) []string {
	v, set := e.get(name, strings.Join(def, ","), desc, false)
	if !set {
		return def
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Err returns every error seen so far, including flags that name no
// variable the service reads.
func (e *Env) Err() error {
	errs := append([]error(nil), e.errs...)
	for name := range e.flags {
		errs = append(errs, fmt.Errorf("unknown flag %s", FlagName(name)))
	}
	return errors.Join(errs...)
}

// Usage renders the variables registered so far as help text.
func Usage(service string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: configuration (environment variable, or the flag shown)\n\n", service)
	for _, v := range Registered() {
		def := v.Default
		if v.Secret {
			def = "(secret)"
		}
		fmt.Fprintf(&sb, "  %-38s %-28s default %q\n      %s\n", v.Name, FlagName(v.Name), def, v.Description)
	}
	return sb.String()
}

// Markdown renders the variables registered so far as Markdown table rows
// (no header), one per variable: | name | default | description |.
func Markdown() string {
	var sb strings.Builder
	for _, v := range Registered() {
		def := "`" + v.Default + "`"
		if v.Default == "" {
			def = ""
		}
		if v.Secret {
			def = "(secret, no default)"
		}
		fmt.Fprintf(&sb, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Description, "|", "\\|"))
	}
	return sb.String()
}
