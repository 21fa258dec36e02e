# Records that a stage rejects go to a dead-letter sink, inside the batch
# protocol: the dead letters of batch N are written before batch N commits,
# so after any crash every input record is in the index or in the
# dead-letter files, once. Here the Elasticsearch sink rejects documents the
# index refuses (a per-item 4xx, such as a field of the wrong type) and the
# set transform rejects records whose value is not a JSON object. Each dead
# letter is the record as the rejecting stage received it, with the headers
# connectd.error, connectd.stage and connectd.position.
#
#   scripts/testenv start elasticsearch
#   connectd run --drain configs/dead-letters.hcl
pipeline "files-to-search" {
  delivery        = "exactly-once"
  on_record_error = "dead_letter"

  source "file" {
    paths = ["data/*.jsonl"]
  }

  transform "set" {
    fields = { "ingested_from" = "position.partition" }
  }

  sink "elasticsearch" {
    addresses = ["http://127.0.0.1:9200"]
    index     = "events"
  }

  dead_letter "file" {
    dir  = "rejected"
    mode = "batch" # idempotent: exactly-once needs it
  }

  checkpoint { dir = "state/files-to-search" }
}
