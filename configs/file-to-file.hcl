# Lines from in/*.txt (one record per line; files appearing later are picked
# up) into one file per batch under out/files, exactly once.
pipeline "files" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*.txt"] }
  sink "file" {
    dir  = "out/files"
    mode = "batch"
  }
  batch {
    max_records = 1000
    max_bytes   = 1048576
    max_wait    = "1s"
  }
  checkpoint { dir = "state/files" }
}
