// Package elasticsearch owns the "elasticsearch" sink: records into Elasticsearch 8 indexes through the Bulk API, idempotent by document id.
//
// Every record becomes one document, indexed with the "index" action under
// an id derived from the record, so that writing a batch again (a replay
// after a crash) overwrites the same documents instead of adding copies:
//
//   - id = "position" (default): "<partition>@<offset>", for example
//     "orders/3@1042": one document per source record; a record a processor
//     added after it (Position.Index k ≥ 1) gets "<partition>@<offset>#<k>".
//   - id = "key": the record key; the latest value per key wins, and a
//     tombstone (sdk.Record.Tombstone, a null value) deletes the key's
//     document with the "delete" action (a delete of a document that is not
//     there succeeds: replays converge). In position mode a tombstone is
//     indexed as its envelope, with "tombstone": true.
//
// The index is a static name or a template filled from each record (see
// ParseTemplate). The document is the record value when it is a JSON object,
// otherwise (and always with document = "envelope") an object holding the
// record's key, value, headers, timestamp and position (see Envelope).
//
// Write reads every item of every bulk response: items rejected with 429 or
// a 5xx status are sent again, alone, with exponential backoff and jitter;
// any other rejection (a document that does not fit the mapping, an invalid
// index name) rejects the record: by default (on_record_error = "reject")
// Write returns an *sdk.Rejected listing it with Elasticsearch's error type
// and reason, and the pipeline's on_record_error decides; "fail" fails the
// batch with an error naming the record's position, index, id and the
// reason; "skip" logs and counts it. Write returns once Elasticsearch has
// acknowledged every other document, which makes them durable (written to
// the translog, fsynced by default); refresh only decides when they become
// searchable.
package elasticsearch

import (
	"github.com/connectd/connectd/sdk"
)

// Plugin is the elasticsearch plugin: a sink only.
var Plugin = sdk.Plugin{
	Sink: &sdk.SinkPlugin{Spec: Spec, New: func() sdk.Sink { return &Sink{} }},
}

// The values of the id parameter.
const (
	IDPosition = "position"
	IDKey      = "key"
)

// The values of the document parameter.
const (
	DocumentAuto     = "auto"
	DocumentEnvelope = "envelope"
)

// The values of the on_record_error parameter.
const (
	OnErrorReject = "reject"
	OnErrorFail   = "fail"
	OnErrorSkip   = "skip"
)

// Spec is the elasticsearch sink's spec.
var Spec = sdk.Spec{
	Name:         "elasticsearch",
	Version:      "0.1.0",
	Kind:         sdk.KindSink,
	Summary:      "Indexes every record as a document through the Bulk API of Elasticsearch 8, under an id derived from the record, so a replayed batch overwrites the same documents.",
	Capabilities: []sdk.Capability{sdk.CapIdempotent},
	Params: []sdk.Param{
		{Name: "addresses", Type: sdk.TypeStrings, Required: true,
			Doc: `Elasticsearch URLs, e.g. ["https://es1:9200", "https://es2:9200"]; requests are spread over them. Give credentials in username/password or api_key, not in the URLs.`},
		{Name: "index", Type: sdk.TypeString, Required: true,
			Doc: `Index (or alias, or data stream) to write to: a name, or a template filled from each record: {header:NAME} (a header's value), {field:a.b} (a field of the JSON value: a string, number or bool), {timestamp:LAYOUT} (the record's timestamp in UTC, in Go's layout: "logs-{timestamp:2006.01.02}" makes daily indexes). "{{" is a literal "{". A record whose template cannot be filled is a rejected record (see on_record_error).`},
		{Name: "id", Type: sdk.TypeString, Default: IDPosition, Enum: []string{IDPosition, IDKey},
			Doc: `Document ids: "position": "<partition>@<offset>" of the record's source position (one document per record), "<partition>@<offset>#<k>" for the k-th record a processor added after it; "key": the record key, which must be non-empty UTF-8 (the latest value per key wins). Both make replays overwrite the same documents (idempotent). Ids over Elasticsearch's 512 bytes become "sha256:<hex of the id>".`},
		{Name: "document", Type: sdk.TypeString, Default: DocumentAuto, Enum: []string{DocumentAuto, DocumentEnvelope},
			Doc: `"auto": the document is the record value when it is a JSON object, otherwise its envelope; "envelope": always {"key", "value", "headers", "timestamp", "position"} (key and value as text, or key_base64/value_base64 when they are not UTF-8).`},
		{Name: "username", Type: sdk.TypeString, Default: "",
			Doc: "User for HTTP basic authentication."},
		{Name: "password", Type: sdk.TypeString, Default: "", Secret: true,
			Doc: "Password for HTTP basic authentication."},
		{Name: "api_key", Type: sdk.TypeString, Default: "", Secret: true,
			Doc: `Base64-encoded API key ("encoded" in Elasticsearch's answer to POST /_security/api_key); used instead of username/password when set.`},
		{Name: "tls_ca_file", Type: sdk.TypeString, Default: "",
			Doc: `PEM file of the certificate authorities that signed the servers' certificates (Elasticsearch 8's config/certs/http_ca.crt); empty: the system's.`},
		{Name: "refresh", Type: sdk.TypeString, Default: "false", Enum: []string{"false", "wait_for", "true"},
			Doc: `Refresh policy of every bulk request: "false" (documents become searchable at the index's next refresh), "wait_for" (a write returns once they are searchable) or "true" (forces a refresh: costly). Durability does not depend on it.`},
		{Name: "on_record_error", Type: sdk.TypeString, Default: OnErrorReject, Enum: []string{OnErrorReject, OnErrorFail, OnErrorSkip},
			Doc: `What a record rejected for good does (Elasticsearch answered 4xx other than 429, or its index template or key cannot be filled): "reject" writes the others and reports it to the host with Elasticsearch's error type and reason, where the pipeline's on_record_error decides (by default the run fails; "dead_letter" sends it to the dead-letter sink); "fail" fails the batch with an error naming the record's position and the reason (the host retries the batch, then stops); "skip" logs it, counts it and goes on.`},
		{Name: "bulk_max_bytes", Type: sdk.TypeInt, Default: int64(8 << 20), Min: 1024,
			Doc: "Most bytes of one bulk request body; a batch larger than this is sent as several requests (a single larger document goes alone)."},
		{Name: "bulk_concurrency", Type: sdk.TypeInt, Default: int64(1), Min: 1, Max: 64,
			Doc: "How many bulk requests of one batch are in flight at once."},
		{Name: "compress", Type: sdk.TypeBool, Default: false,
			Doc: "Send request bodies gzip-compressed."},
		{Name: "request_timeout", Type: sdk.TypeDuration, Default: "1m", Min: "1ms",
			Doc: "Longest wait for one bulk request's answer; a request that takes longer is retried."},
		{Name: "retry_backoff", Type: sdk.TypeDuration, Default: "100ms", Min: "1ms",
			Doc: "First wait before sending rejected (429, 5xx) or unanswered items again; it doubles, with ±50% jitter, up to retry_backoff_max."},
		{Name: "retry_backoff_max", Type: sdk.TypeDuration, Default: "10s", Min: "1ms",
			Doc: "Longest wait between two retries."},
		{Name: "retry_timeout", Type: sdk.TypeDuration, Default: "5m", Min: "0s",
			Doc: `How long a batch keeps retrying before Write fails (the host then restarts the sink and replays the batch); "0s" retries until the pipeline stops.`},
	},
}
