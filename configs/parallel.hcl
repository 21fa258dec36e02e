# The quickstart's records read by 3 tasks at once (parallelism = 3): task k
# reads the generator's partitions p with p % 3 == k, keeps its own checkpoint
# under state/parallel/parallel-<k> and writes into out/parallel/parallel-<k>.
#
#   connectd run --drain configs/parallel.hcl
#   connectd offsets show configs/parallel.hcl
pipeline "parallel" {
  delivery    = "exactly-once"
  parallelism = 3

  source "generator" {
    count      = 100000
    partitions = 6
    size       = 100
  }

  sink "file" {
    dir  = "out/parallel"
    mode = "batch"
  }

  batch {
    max_records = 5000
    max_wait    = "500ms"
  }

  checkpoint {
    dir = "state/parallel"
  }
}
