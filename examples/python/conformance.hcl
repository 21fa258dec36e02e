# Settings for `connectd conformance` with pyjsonl as both the source and the
# sink under test (examples/python/test). Paths are relative to each
# pipeline's own directory.
source "pyjsonl" { dir = "in" }
sink "pyjsonl"   { dir = "out" }
input "pyjsonl"  { dir = "in" }   # puts the suite's records into the source: the same plugin's sink
