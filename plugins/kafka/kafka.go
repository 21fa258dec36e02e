// Package kafka owns the "kafka" source and sink, built on
// github.com/segmentio/kafka-go.
//
// The source is a direct, offset-range source in the manner of Spark's Direct
// API: it never joins a consumer group. Each batch is planned from the
// partitions' end offsets as a range [from, until) per partition
// ("topic/partition"), and a replay reads exactly that range again. ACK
// publishes the batch's until offsets to a consumer group with a standalone
// offset commit, for Kafka's lag tools only.
//
// The sink produces with acks=all and partitions by key with murmur2, as Java
// clients do. In mode "plain" it is at-least-once. In mode "dedupe" every
// record carries the headers connectd-pipeline, connectd-batch and
// connectd-seq, and a batch that is written again first reads the tail of its
// target partitions and skips what it already wrote there; that makes it
// idempotent as long as connectd is the only writer of those partitions.
// docs/plugins/kafka.md is the user's guide.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connectd/connectd/sdk"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/sasl/plain"
)

// Version is the version of both roles of the plugin.
const Version = "0.1.0"

// Plugin is the kafka plugin: a source and a sink.
var Plugin = sdk.Plugin{
	Source: &sdk.SourcePlugin{Spec: SourceSpec, New: func() sdk.Source { return &Source{} }},
	Sink:   &sdk.SinkPlugin{Spec: SinkSpec, New: func() sdk.Sink { return &Sink{} }},
}

// brokersParam is the first parameter of both roles.
var brokersParam = sdk.Param{Name: "brokers", Type: sdk.TypeStrings, Required: true, Pattern: brokerPattern,
	Doc: `Bootstrap brokers as "host:port"; one is enough, the others are discovered.`}

// brokerPattern is the form of a broker, "host:port" (an IPv6 host in
// brackets: dial checks the rest with net.SplitHostPort).
const brokerPattern = `\S+:[0-9]+`

// topicPattern is a legal Kafka topic name (the brokers refuse any other).
const topicPattern = `[a-zA-Z0-9._-]{1,249}`

// connParams are the other parameters both roles take to reach the brokers.
func connParams() []sdk.Param {
	return []sdk.Param{
		{Name: "client_id", Type: sdk.TypeString, Default: "connectd",
			Doc: "Client id sent to the brokers (shows in their logs and quotas)."},
		{Name: "request_timeout", Type: sdk.TypeDuration, Default: "30s", Min: "1ms",
			Doc: "How long one call to the brokers (metadata, fetch, produce, list offsets, commit) may take, retries of retriable errors included."},
		{Name: "tls", Type: sdk.TypeBool, Default: false,
			Doc: "Connect with TLS. The system's CAs verify the brokers unless tls_ca_file is set."},
		{Name: "tls_ca_file", Type: sdk.TypeString, Default: "",
			Doc: "PEM file of the CA(s) that sign the brokers' certificates; implies tls."},
		{Name: "tls_cert_file", Type: sdk.TypeString, Default: "",
			Doc: "PEM client certificate for mutual TLS (with tls_key_file); implies tls."},
		{Name: "tls_key_file", Type: sdk.TypeString, Default: "",
			Doc: "PEM private key of tls_cert_file; implies tls."},
		{Name: "tls_skip_verify", Type: sdk.TypeBool, Default: false,
			Doc: "Do not verify the brokers' certificates (tests only)."},
		{Name: "sasl_mechanism", Type: sdk.TypeString, Default: "", Enum: []string{"", "PLAIN"},
			Doc: `"" (none) or "PLAIN". Use it with TLS: PLAIN sends the password as is.`},
		{Name: "sasl_username", Type: sdk.TypeString, Default: "",
			Doc: "SASL user name."},
		{Name: "sasl_password", Type: sdk.TypeString, Default: "", Secret: true,
			Doc: "SASL password. It is never logged or printed."},
	}
}

// conn is one role's connection to a Kafka cluster.
type conn struct {
	client    *kafkago.Client
	transport *kafkago.Transport
	brokers   []string
	timeout   time.Duration
	log       *slog.Logger
	role      string // "kafka source" or "kafka sink", the prefix of every error
	secured   bool   // TLS or SASL is configured
}

// dial reads the connection parameters and builds the client. It does not
// contact the brokers: the first request does. metadataTTL bounds how old
// the cached partition layout may be; topics limits it to those topics
// (nil: all).
func dial(cfg sdk.Config, role string, topics []string, metadataTTL time.Duration) (*conn, error) {
	// The spec's rules check request_timeout and sasl_mechanism.
	brokers := cfg.Strings("brokers")
	if len(brokers) == 0 {
		return nil, sdk.Configf("brokers is empty; give at least one \"host:port\"")
	}
	for _, b := range brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, sdk.Configf("broker %q is not \"host:port\"", b)
		}
	}
	timeout := cfg.Duration("request_timeout")
	t := &kafkago.Transport{
		ClientID:       cfg.String("client_id"),
		DialTimeout:    min(timeout, 10*time.Second),
		MetadataTTL:    metadataTTL,
		MetadataTopics: topics,
	}
	tc, err := tlsConfig(cfg)
	if sdk.IsConfigError(err) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	t.TLS = tc
	if cfg.String("sasl_mechanism") == "PLAIN" {
		if cfg.String("sasl_username") == "" {
			return nil, sdk.Configf("sasl_mechanism is PLAIN but sasl_username is empty")
		}
		t.SASL = plain.Mechanism{Username: cfg.String("sasl_username"), Password: cfg.String("sasl_password")}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("plugin", role, "pipeline", cfg.Pipeline)
	return &conn{
		client:    &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: t},
		transport: t,
		brokers:   brokers,
		timeout:   timeout,
		log:       log,
		role:      role,
		secured:   t.TLS != nil || t.SASL != nil,
	}, nil
}

// tlsConfig returns the TLS configuration the parameters ask for, or nil.
func tlsConfig(cfg sdk.Config) (*tls.Config, error) {
	ca, cert, key := cfg.String("tls_ca_file"), cfg.String("tls_cert_file"), cfg.String("tls_key_file")
	if !cfg.Bool("tls") && ca == "" && cert == "" && key == "" && !cfg.Bool("tls_skip_verify") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Bool("tls_skip_verify")}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s holds no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, sdk.Configf("tls_cert_file and tls_key_file go together; only one is set")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// close releases the connections.
func (c *conn) close() {
	if c != nil {
		c.transport.CloseIdleConnections()
	}
}

// call bounds one request by request_timeout.
func (c *conn) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// errorf prefixes an error with the role.
func (c *conn) errorf(format string, args ...any) error {
	return fmt.Errorf(c.role+": "+format, args...)
}

// brokerErr words an error of a call to the brokers, with the brokers named
// when the call never got an answer.
func (c *conn) brokerErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return c.errorf("%s: no answer from brokers %s within request_timeout %v: %w", what, strings.Join(c.brokers, ","), c.timeout, err)
	}
	hint := ""
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		hint = "; the brokers closed the connection: "
		if c.secured {
			hint += "check the SASL mechanism, user name and password, and whether they expect TLS"
		} else {
			hint += "do they expect TLS or SASL?"
		}
	}
	return c.errorf("%s (brokers %s): %w%s", what, strings.Join(c.brokers, ","), err, hint)
}

// tp is one topic partition.
type tp struct {
	topic string
	part  int32
}

// name is the partition's connectd name, "topic/partition".
func (p tp) name() string { return p.topic + "/" + strconv.Itoa(int(p.part)) }

// parseTP reads a "topic/partition" name.
func parseTP(name string) (tp, bool) {
	topic, part := sdk.SplitPartition(name)
	n, err := strconv.ParseInt(part, 10, 32)
	if err != nil || n < 0 || topic == "" || strconv.FormatInt(n, 10) != part {
		return tp{}, false
	}
	return tp{topic: topic, part: int32(n)}, true
}

// less orders partitions by topic, then partition number: the order records
// of several partitions are interleaved in.
func (p tp) less(q tp) bool {
	if p.topic != q.topic {
		return p.topic < q.topic
	}
	return p.part < q.part
}

// layout is what the metadata says about some topics.
type layout struct {
	parts   map[string][]tp  // topic → its partitions, in order
	leaders map[tp]int       // partition → leader broker id
	missing map[string]error // topic → why it has no metadata
}

// metadata returns the cached partition layout of topics (refreshed by the
// transport every metadata TTL at most).
func (c *conn) metadata(ctx context.Context, topics []string) (layout, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	m, err := c.client.Metadata(cctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return layout{}, c.brokerErr("metadata", err)
	}
	l := layout{parts: map[string][]tp{}, leaders: map[tp]int{}, missing: map[string]error{}}
	for _, t := range m.Topics {
		if t.Error != nil {
			l.missing[t.Name] = t.Error
			continue
		}
		ps := make([]tp, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			x := tp{topic: t.Name, part: int32(p.ID)}
			ps = append(ps, x)
			l.leaders[x] = p.Leader.ID
		}
		sortTPs(ps)
		l.parts[t.Name] = ps
	}
	for _, t := range topics {
		if _, ok := l.parts[t]; !ok && l.missing[t] == nil {
			l.missing[t] = kafkago.UnknownTopicOrPartition
		}
	}
	return l, nil
}

// sortTPs sorts partitions with less.
func sortTPs(ps []tp) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].less(ps[j-1]); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// bounds is what ListOffsets says of one partition.
type bounds struct {
	first int64 // log start offset: the earliest offset still held
	last  int64 // high watermark: the offset after the last record
}

// offsets returns the first and last offsets of every partition in ps. An
// error names the partition.
func (c *conn) offsets(ctx context.Context, ps []tp, wantFirst bool) (map[tp]bounds, error) {
	out := make(map[tp]bounds, len(ps))
	if len(ps) == 0 {
		return out, nil
	}
	list := func(ts int64) error {
		req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for _, p := range ps {
			req.Topics[p.topic] = append(req.Topics[p.topic], kafkago.OffsetRequest{Partition: int(p.part), Timestamp: ts})
		}
		return c.retry(ctx, "list offsets", func(cctx context.Context) (bool, error) {
			resp, err := c.client.ListOffsets(cctx, req)
			if err != nil {
				return retriable(err), c.brokerErr("list offsets", err)
			}
			seen := 0
			for topic, parts := range resp.Topics {
				for _, po := range parts {
					p := tp{topic: topic, part: int32(po.Partition)}
					if po.Error != nil {
						return retriable(po.Error), c.errorf("list offsets of partition %s: %w", p.name(), po.Error)
					}
					b := out[p]
					if ts == kafkago.FirstOffset {
						b.first = po.FirstOffset
					} else {
						b.last = po.LastOffset
					}
					out[p] = b
					seen++
				}
			}
			if seen < len(ps) {
				return true, c.errorf("list offsets: the brokers answered for %d of %d partitions", seen, len(ps))
			}
			return false, nil
		})
	}
	if wantFirst {
		if err := list(kafkago.FirstOffset); err != nil {
			return nil, err
		}
	}
	if err := list(kafkago.LastOffset); err != nil {
		return nil, err
	}
	return out, nil
}

// retry runs f until it succeeds, fails with a non-retriable error, or
// request_timeout has passed; f gets a context bounded by what is left.
func (c *conn) retry(ctx context.Context, what string, f func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(c.timeout)
	wait := 50 * time.Millisecond
	for {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		again, err := f(cctx)
		cancel()
		if err == nil || !again || ctx.Err() != nil {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w (still failing after retrying %s for request_timeout %v)", err, what, c.timeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// retriable reports whether a request that failed with err may succeed when
// sent again: leadership moving, metadata not yet propagated (a partition
// just added), connections dropped. Running out of time is not retriable.
func retriable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var ke kafkago.Error
	if errors.As(err, &ke) {
		return ke.Temporary() || ke == kafkago.UnknownTopicOrPartition || ke == kafkago.NotLeaderForPartition ||
			ke == kafkago.LeaderNotAvailable || ke == kafkago.NotCoordinatorForGroup || ke == kafkago.GroupCoordinatorNotAvailable
	}
	if errors.Is(err, protocol.ErrNoTopic) || errors.Is(err, protocol.ErrNoPartition) || errors.Is(err, protocol.ErrNoLeader) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "mismatching leaders")
}

// warner logs a warning at most once a minute per key.
type warner struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (w *warner) warn(log *slog.Logger, key, msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string]time.Time{}
	}
	if t, ok := w.last[key]; ok && time.Since(t) < time.Minute {
		return
	}
	w.last[key] = time.Now()
	log.Warn(msg, args...)
}
