# Exactly-once through a transactional sink: the file sink's "transactional"
# mode stores each batch's until offsets with its output, and the host asks it
# at start which batch it committed last (its answer wins over the checkpoint's).
pipeline "tx" {
  delivery = "exactly-once"
  source "generator" {
    count      = 10000
    partitions = 2
  }
  sink "file" {
    dir  = "out/tx"
    mode = "transactional"
  }
  batch { max_records = 1000 }
  checkpoint { dir = "state/tx" }
}
