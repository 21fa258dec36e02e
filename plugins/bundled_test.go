package plugins

import (
	"testing"

	"github.com/connectd/connectd/sdk"
)

// TestBundledSpecsCheck: every bundled spec, its parameter rules included,
// passes sdk.Spec.Check (a default outside its own enum or range, a pattern
// that does not compile, or a When value outside its enum would fail here
// rather than at every start of the plugin).
func TestBundledSpecsCheck(t *testing.T) {
	for name, p := range Bundled() {
		var specs []sdk.Spec
		if p.Source != nil {
			specs = append(specs, p.Source.Spec)
		}
		if p.Sink != nil {
			specs = append(specs, p.Sink.Spec)
		}
		if p.Processor != nil {
			specs = append(specs, p.Processor.Spec)
		}
		if len(specs) == 0 {
			t.Errorf("plugin %q has no role", name)
		}
		for _, s := range specs {
			if err := s.Check(); err != nil {
				t.Errorf("%s %q: %v", s.Kind, name, err)
			}
		}
	}
}
