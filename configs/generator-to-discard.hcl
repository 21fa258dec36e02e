# Throughput: generated 100-byte records through two plugin processes into the
# discard sink, exactly once. Also shows two pipelines in one file; run one with
#   connectd run --drain --pipeline bench configs/generator-to-discard.hcl
pipeline "bench" {
  delivery = "exactly-once"
  source "generator" {
    count      = 2000000
    partitions = 4
    size       = 100
  }
  sink "discard" {}
  batch { max_records = 20000 }
  checkpoint { dir = "state/bench" }
}

pipeline "unbounded" {
  delivery = "at-least-once"
  source "generator" {
    partitions = 2
    rate       = 1000
  }
  sink "discard" {}
  batch {
    max_records = 1000
    max_wait    = "1s"
  }
  checkpoint { dir = "state/unbounded" }
}
