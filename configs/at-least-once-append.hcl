# At-least-once into one growing file: after a crash the last batch is written
# again, so a few records may appear twice; none is lost, and no torn line is
# ever left behind (the sink cuts a torn tail when it opens the file).
pipeline "append" {
  delivery = "at-least-once"
  source "generator" {
    count      = 10000
    partitions = 2
  }
  sink "file" {
    dir  = "out/append"
    mode = "append"
    file = "records.txt"
  }
  batch { max_records = 500 }
  checkpoint { dir = "state/append" }
}
