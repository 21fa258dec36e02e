package sdk

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/connectd/connectd/internal/suggest"
)

// ParamError is what is wrong with one parameter of a configuration: it is
// unknown, missing, of the wrong type, or its value breaks a rule of its
// Param (Enum, Min, Max, Pattern).
type ParamError struct {
	// Param is the parameter's name as written in the configuration.
	Param string
	// Message says what is wrong, without the parameter's name, for example
	// `"sideways" is not one of "batch", "append", "transactional"`. It never
	// holds the value of a Secret parameter.
	Message string
	// Suggestion is, for a value outside an Enum (or an unknown parameter),
	// the allowed value (or parameter name) nearest to what was written when
	// it is a likely misspelling; "" otherwise.
	Suggestion string
}

// Error returns `parameter "mode": <Message>`, followed by `; did you mean
// "x"?` when there is a Suggestion.
func (e *ParamError) Error() string {
	msg := fmt.Sprintf("parameter %q: %s", e.Param, e.Message)
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.Suggestion)
	}
	return msg
}

// ConfigError is a configuration that cannot work: the user must change it;
// running again as is fails again. NewConfig returns one listing every
// parameter in error. A plugin's Open returns one (see Configf) for what only
// Open can check, such as a rule between two parameters; the host then
// reports a configuration error (connectd exits with status 2 and names the
// plugin's block in the pipeline file) instead of a failure of the run, and
// does not restart the plugin.
type ConfigError struct {
	// Params are the problems of single parameters, sorted by name.
	Params []*ParamError
	// Err is a problem not tied to one parameter; nil when Params say it all.
	Err error
}

// Error joins the problems with "; ".
func (e *ConfigError) Error() string {
	var parts []string
	for _, p := range e.Params {
		parts = append(parts, p.Error())
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	if len(parts) == 0 {
		return "invalid configuration"
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// Configf returns a *ConfigError whose Err is fmt.Errorf(format, args...).
// Open returns it for a configuration it refuses, for example
// sdk.Configf("mode %q needs key", mode). Write the message without the
// plugin's name: the host puts it in front.
func Configf(format string, args ...any) error {
	return &ConfigError{Err: fmt.Errorf(format, args...)}
}

// IsConfigError reports whether err is or wraps a *ConfigError.
func IsConfigError(err error) bool {
	var c *ConfigError
	return errors.As(err, &c)
}

// hasRules reports whether p declares any value rule.
func (p Param) hasRules() bool {
	return len(p.Enum) > 0 || p.Min != nil || p.Max != nil || p.Pattern != ""
}

// checkRules reports what is wrong with the rules of p themselves: a rule
// that does not apply to its type, a bound of the wrong type, min > max, a
// pattern that does not compile, a repeated enum value.
func (p Param) checkRules() error {
	text := p.Type == TypeString || p.Type == TypeStrings
	number := p.Type == TypeInt || p.Type == TypeFloat || p.Type == TypeDuration
	if (len(p.Enum) > 0 || p.Pattern != "") && !text {
		return fmt.Errorf("enum and pattern apply to %s and %s parameters, not %s", TypeString, TypeStrings, p.Type)
	}
	if (p.Min != nil || p.Max != nil) && !number {
		return fmt.Errorf("min and max apply to %s, %s and %s parameters, not %s", TypeInt, TypeFloat, TypeDuration, p.Type)
	}
	seen := map[string]bool{}
	for _, v := range p.Enum {
		if seen[v] {
			return fmt.Errorf("enum value %q is repeated", v)
		}
		seen[v] = true
	}
	if p.Pattern != "" {
		if _, err := compilePattern(p.Pattern); err != nil {
			return fmt.Errorf("pattern %q does not compile: %v", p.Pattern, err)
		}
	}
	lo, hi, err := p.bounds()
	if err != nil {
		return err
	}
	if lo != nil && hi != nil && less(hi, lo) {
		return fmt.Errorf("min %s is more than max %s", show(lo), show(hi))
	}
	return nil
}

// compilePattern compiles a Pattern so that it must match a whole value.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// bounds returns Min and Max converted to the parameter's Go type (nil when
// unset).
func (p Param) bounds() (lo, hi any, err error) {
	if p.Min != nil {
		if lo, err = Convert(p.Type, p.Min); err != nil {
			return nil, nil, fmt.Errorf("min: %w", err)
		}
	}
	if p.Max != nil {
		if hi, err = Convert(p.Type, p.Max); err != nil {
			return nil, nil, fmt.Errorf("max: %w", err)
		}
	}
	return lo, hi, nil
}

// less compares two converted values of the same numeric type.
func less(a, b any) bool {
	switch x := a.(type) {
	case int64:
		return x < b.(int64)
	case float64:
		return x < b.(float64)
	case time.Duration:
		return x < b.(time.Duration)
	}
	return false
}

// show renders a converted value for a message.
func show(v any) string {
	switch x := v.(type) {
	case time.Duration:
		return x.String()
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

// checkValue checks a value already converted to p's Go type against p's
// rules. The spec's rules are assumed valid (Spec.Check).
func (p Param) checkValue(v any) *ParamError {
	if !p.hasRules() {
		return nil
	}
	fail := func(msg, suggestion string) *ParamError {
		return &ParamError{Param: p.Name, Message: msg, Suggestion: suggestion}
	}
	var re *regexp.Regexp
	if p.Pattern != "" {
		var err error
		if re, err = compilePattern(p.Pattern); err != nil {
			return fail(fmt.Sprintf("pattern %q does not compile: %v", p.Pattern, err), "")
		}
	}
	switch x := v.(type) {
	case string:
		return p.checkText(x, "", re, fail)
	case []string:
		for i, s := range x {
			if e := p.checkText(s, fmt.Sprintf("element %d: ", i), re, fail); e != nil {
				return e
			}
		}
		return nil
	}
	lo, hi, err := p.bounds()
	if err != nil {
		return fail(err.Error(), "")
	}
	switch {
	case lo != nil && hi != nil && (less(v, lo) || less(hi, v)):
		return fail(fmt.Sprintf("%s is outside the range %s to %s", show(v), show(lo), show(hi)), "")
	case lo != nil && less(v, lo):
		return fail(fmt.Sprintf("%s is less than the minimum %s", show(v), show(lo)), "")
	case hi != nil && less(hi, v):
		return fail(fmt.Sprintf("%s is more than the maximum %s", show(v), show(hi)), "")
	}
	return nil
}

// checkText checks one string (the value or an element of a list) against
// Enum and re, the compiled Pattern (nil when none).
func (p Param) checkText(s, where string, re *regexp.Regexp, fail func(msg, suggestion string) *ParamError) *ParamError {
	value := fmt.Sprintf("%q", s)
	if p.Secret {
		value = "the value"
	}
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
		suggestion := ""
		if !p.Secret {
			suggestion = suggest.Closest(s, p.Enum)
		}
		return fail(fmt.Sprintf("%s%s is not one of %s", where, value, quoted(p.Enum)), suggestion)
	}
	if re != nil && !re.MatchString(s) {
		return fail(fmt.Sprintf("%s%s does not match the pattern `%s`", where, value, p.Pattern), "")
	}
	return nil
}

// quoted renders `"a", "b", "c"`.
func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
