# At-most-once: the batch is committed before it is written, so a crash may
# lose it but never writes it twice. Any source and sink will do.
pipeline "sampled" {
  delivery = "at-most-once"
  source "generator" {
    count = 10000
  }
  sink "file" {
    dir  = "out/sampled"
    mode = "append"
  }
  batch { max_records = 500 }
  checkpoint { dir = "state/sampled" }
}
