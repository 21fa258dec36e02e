# The quickstart: 100,000 generated records into files under out/quickstart,
# exactly once, with the checkpoint under state/quickstart. Paths are relative
# to the directory you run connectd from.
#
#   connectd run --drain configs/quickstart.hcl
pipeline "quickstart" {
  delivery = "exactly-once"

  source "generator" {
    count      = 100000
    partitions = 4
    size       = 100
  }

  sink "file" {
    dir  = "out/quickstart"
    mode = "batch" # one file per batch, written by rename: a replay overwrites it
  }

  batch {
    max_records = 5000
    max_wait    = "500ms"
  }

  checkpoint {
    dir = "state/quickstart"
  }
}
