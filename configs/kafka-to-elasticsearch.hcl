# Kafka → Elasticsearch, exactly once. The kafka source plans every batch as
# an offset range per partition and can read it again exactly; the
# elasticsearch sink indexes each record under the id "<topic>/<partition>@<offset>",
# so a batch replayed after a crash overwrites the same documents: each
# record ends up as exactly one document.
#
#   scripts/testenv start kafka                        # prints KAFKA_BROKERS=127.0.0.1:<port>
#   ES_PORT=9200 scripts/testenv start elasticsearch   # prints ES_URL, ES_USERNAME, ES_PASSWORD
#   export ES_PASSWORD=...                             # the value it printed
# set brokers below, uncomment the password line, produce JSON objects such
# as {"order_id":"o-1","total":12.5} to the topic "orders", then:
#   connectd run configs/kafka-to-elasticsearch.hcl
#   curl -u elastic:$ES_PASSWORD "$ES_URL/orders-*/_search?q=order_id:o-1"
pipeline "kafka-to-elasticsearch" {
  delivery = "exactly-once"

  source "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topics           = ["orders"]
    starting_offsets = "earliest"
    group_id         = "connectd-orders" # lag shows in Kafka's tools; nothing depends on it
  }

  sink "elasticsearch" {
    addresses = ["http://127.0.0.1:9200"] # Elasticsearch 8 itself: https://...:9200 with tls_ca_file
    index     = "orders-{timestamp:2006.01.02}" # a daily index from each record's Kafka timestamp
    id        = "position"                      # or "key": one document per Kafka key, the latest wins
    username  = "elastic"
    # password = env("ES_PASSWORD")             # secrets only through env()
    # tls_ca_file = "/etc/elasticsearch/certs/http_ca.crt"
    on_record_error = "fail" # a document Elasticsearch rejects (mapping) stops the pipeline, naming it
  }

  batch {
    max_records = 5000
    max_bytes   = 8388608 # one bulk request per batch (bulk_max_bytes defaults to 8 MiB)
    max_wait    = "1s"
  }

  checkpoint {
    dir = "state/kafka-to-elasticsearch"
  }
}
