package sdk

// Plugin is everything one plugin program offers: a source, a sink, a
// processor or several of them, each with its spec. Serve takes one.
type Plugin struct {
	Source *SourcePlugin // nil when the plugin has no source
	Sink   *SinkPlugin   // nil when the plugin has no sink
	// Processor is nil when the plugin has no processor.
	Processor *ProcessorPlugin
}

// SourcePlugin is a source role: its spec and a constructor. New is called
// once per pipeline that uses the source; the result is then opened.
type SourcePlugin struct {
	Spec Spec
	New  func() Source
}

// SinkPlugin is a sink role: its spec and a constructor.
type SinkPlugin struct {
	Spec Spec
	New  func() Sink
}

// ProcessorPlugin is a processor role: its spec and a constructor.
type ProcessorPlugin struct {
	Spec Spec
	New  func() Processor
}

// Name is the plugin's name, taken from the spec of its source, sink or
// processor (the first it has, in that order).
func (p Plugin) Name() string {
	if p.Source != nil {
		return p.Source.Spec.Name
	}
	if p.Sink != nil {
		return p.Sink.Spec.Name
	}
	if p.Processor != nil {
		return p.Processor.Spec.Name
	}
	return ""
}
