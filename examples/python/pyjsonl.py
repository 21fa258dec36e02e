#!/usr/bin/python3
"""pyjsonl: a connectd plugin in Python, written from connector.proto alone.

One executable serves three roles, two of them over a directory of JSON Lines
files:

  sink "pyjsonl"   { dir = "out" }  writes batch N of pipeline P to dir/P-N.jsonl,
                                    atomically: writing a batch again rewrites the
                                    same file, so the sink is idempotent.
  source "pyjsonl" { dir = "in" }   reads every dir/*.jsonl file as a partition
                                    (offset = line number): files never change once
                                    written, so a range can be read again exactly
                                    (replayable).
  transform "pyjsonl" { copies = 2 } makes each record whose value is a JSON
                                    object `copies` records, the object with
                                    "copy": 0, 1, … added (0 drops it), and
                                    rejects any other value; the same batch
                                    always gives the same records (deterministic).

It needs Debian's python3-grpcio (and python3-cryptography when the host asks
for mTLS: CONNECTD_PLUGIN_TLS=1), and stubs generated from connector.proto with
python3-grpc-tools into a directory on PYTHONPATH:

  python3 -m grpc_tools.protoc -I internal/protocol --python_out=DIR \
      --grpc_python_out=DIR internal/protocol/connector.proto

examples/python/test does that and runs the conformance suite against it.
docs/protocol.md, "Writing a plugin without the Go sdk", explains every step.
"""

import base64
import collections
import datetime
import glob
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

import connector_pb2 as pb
import connector_pb2_grpc as pbgrpc

# The go-plugin handshake that connectd uses (protocol version 1).
COOKIE_KEY, COOKIE_VALUE = "CONNECTD_PLUGIN", "connector.v1:7d0c6f8e-streams"
PROTOCOL_VERSION = "1"
# The host sends messages up to 256 MiB (a single record may be that large);
# gRPC's default receive limit is 4 MiB. Records travel in chunks of ~1 MiB.
MAX_MESSAGE = 256 << 20
CHUNK_BYTES = 1 << 20

# ---------------------------------------------------------------- parameters

Param = collections.namedtuple("Param", "name type default required doc")

SOURCE_PARAMS = [
    Param("dir", "string", None, True, "Directory whose *.jsonl files are read, one partition each."),
    Param("poll", "duration", "100ms", False, "How often a Read that found nothing looks again, up to the batch's max_wait."),
]
SINK_PARAMS = [
    Param("dir", "string", None, True, "Directory the batch files are written to; created when missing."),
    Param("fsync", "bool", True, False, "Flush every file and the directory before a write returns."),
]
PROCESSOR_PARAMS = [
    Param("copies", "int", 1, False, 'How many records each JSON object value becomes, each with "copy": 0, 1, … added; 0 drops it.'),
]


def spec(name, kind, capabilities, features, params,
         summary="JSON Lines files in a directory (an example plugin in Python)"):
    return pb.PluginSpec(
        name=name, version="0.1.0", kind=kind, capabilities=capabilities, features=features,
        summary=summary,
        params=[pb.Param(name=p.name, type=p.type, required=p.required, doc=p.doc,
                         default_json="" if p.default is None else json.dumps(p.default))
                for p in params])


def config(params, config_json):
    """The values of an OpenRequest. The host sends only what the user wrote
    (validated against the spec): defaults are the plugin's job."""
    values = json.loads(config_json or "{}")
    for p in params:
        if p.name not in values:
            if p.required:
                raise ValueError(f"parameter {p.name!r} is required")
            values[p.name] = p.default
    return values


UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
NUMBER_UNIT = r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)"


def seconds(duration):
    """Go's duration syntax, in which the host writes durations: "250ms", "1m30s", "1.5h"."""
    m = re.fullmatch(rf"([-+]?)((?:{NUMBER_UNIT})+|0)", duration)
    if not m:
        raise ValueError(f"{duration!r} is not a duration such as \"500ms\" or \"2m\"")
    total = sum(float(n) * UNITS[u] for n, u in re.findall(NUMBER_UNIT, m[2]))
    return -total if m[1] == "-" else total

# -------------------------------------------------------------- fault points
# CONNECTD_FAULT (docs/fault-points.md) names points where a process kills
# itself, for the conformance suite, or, for an item ending in /error, where
# the call fails with an error and the process lives on (once per process, or
# with %N every Nth time the process reaches the point). The host refuses a
# malformed value before it starts any plugin; a plugin acts on its own points
# and ignores the host's.

FAULTS = {}  # point -> {"batch": 0 for any, "every": N or 0, "k": k or None, "error": bool, "calls", "fired"}
FAULTS_LOCK = threading.Lock()


def arm_faults(value):
    for item in filter(None, (s.strip() for s in value.split(","))):
        m = re.fullmatch(r"([a-z.]+)(?:@(\d+)|%(\d+))?(?::(\d+))?(/error)?", item)
        if not m:
            raise ValueError(f"CONNECTD_FAULT: malformed item {item!r}")
        FAULTS[m[1]] = {"batch": int(m[2] or 0), "every": int(m[3] or 0), "k": None if m[4] is None else int(m[4]),
                        "error": m[5] is not None, "calls": 0, "fired": False}


def armed(point, batch):
    """Whether point fires in this call for batch, and its k; counts the call for %N."""
    with FAULTS_LOCK:
        f = FAULTS.get(point)
        if f is None or (f["batch"] and f["batch"] != batch):
            return False, None
        if f["every"]:
            f["calls"] += 1
            if f["calls"] % f["every"]:
                return False, None
        elif f["error"] and f["fired"]:
            return False, None
        f["fired"] = True
        return True, f["k"]


def fail(point, batch, context):
    """Ends the call at point: an error item fails it (UNKNOWN, which the host
    retries), any other kills the process."""
    if FAULTS[point]["error"]:
        context.abort(grpc.StatusCode.UNKNOWN, f"fault point {point!r} failed the call in batch {batch} (CONNECTD_FAULT)")
    die()


def hit(point, batch, context):
    if armed(point, batch)[0]:
        fail(point, batch, context)


def partial(point, batch, n):
    """How many of n records a partial point lets through, or None when it does not fire."""
    on, k = armed(point, batch)
    if not on:
        return None
    return n // 2 if k is None else min(k, n)


def die():
    """Dies at once, as kill -9 would: no cleanup, no flush."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)

# ------------------------------------------------------------------- records

Rec = collections.namedtuple("Rec", "partition offset key value headers timestamp")


def size(r):
    """A record's size in a batch's max_bytes policy and ReadReply.bytes."""
    return len(r.key) + len(r.value) + sum(len(k.encode()) + len(v) for k, v in r.headers)


def chunks(records):
    """Packs records into Chunks of about CHUNK_BYTES: each chunk has a table of
    partition names, and its records refer to it by index."""
    chunk, index, n = pb.Chunk(), {}, 0
    for r in records:
        if r.partition not in index:
            index[r.partition] = len(chunk.partitions)
            chunk.partitions.append(r.partition)
        chunk.records.add(partition=index[r.partition], offset=r.offset, key=r.key, value=r.value,
                          headers=[pb.Header(key=k, value=v) for k, v in r.headers],
                          timestamp_unix_nano=r.timestamp)
        n += size(r) + 16
        if n >= CHUNK_BYTES:
            yield chunk
            chunk, index, n = pb.Chunk(), {}, 0
    if chunk.records:
        yield chunk


def unpack(chunk):
    for m in chunk.records:
        yield Rec(chunk.partitions[m.partition], m.offset, m.key, m.value,
                  [(h.key, h.value) for h in m.headers], m.timestamp_unix_nano)


def text(b):
    """A JSON-safe form of bytes: the text itself when it is UTF-8, else base64."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(b).decode()}


def untext(v):
    return base64.b64decode(v["base64"]) if isinstance(v, dict) else v.encode("utf-8")


def to_line(r):
    return json.dumps({"key": text(r.key), "value": text(r.value), "timestamp": r.timestamp,
                       "headers": [[k, text(v)] for k, v in r.headers]}) + "\n"


def from_line(partition, offset, line):
    d = json.loads(line)
    return Rec(partition, offset, untext(d["key"]), untext(d["value"]),
               [(k, untext(v)) for k, v in d["headers"]], d["timestamp"])

# -------------------------------------------------------------------- source


def offsets(m):
    return dict(m.offsets)


def check_read(start, max_records, stop, records, until):
    """What the Go sdk checks before the host sees a batch (sdk.CheckRead):
    a non-Go source must keep the same promises. start(p) is where partition p
    started, or None when unknown."""
    if max_records > 0 and len(records) > max_records:
        raise ValueError(f"{len(records)} records, more than max_records {max_records}")
    for p, u in until.items():
        if u < 0 or (start(p) is not None and u < start(p)):
            raise ValueError(f"until {u} of {p!r} is negative or before its start")
    last = {}
    for i, r in enumerate(records):
        p, o = r.partition, r.offset
        if p not in until or o >= until[p] or (start(p) is not None and o < start(p)):
            raise ValueError(f"record {i} ({p}@{o}) is outside its partition's range")
        if p in last and o <= last[p]:
            raise ValueError(f"record {i} ({p}@{o}) does not come after {p}@{last[p]}")
        if stop is not None and (p not in stop or o >= stop[p]):
            raise ValueError(f"record {i} ({p}@{o}) is at or past the stop offsets")
        last[p] = o


class Source(pbgrpc.SourceServicer):
    def __init__(self):
        self.dir = None
        self.lock = threading.Lock()
        self.files = {}  # partition -> its lines (a file never changes once written)

    def Spec(self, request, context):
        return spec("pyjsonl", "source", ["replayable"], ["replayer", "ender"], SOURCE_PARAMS)

    def Open(self, request, context):
        try:
            cfg = config(SOURCE_PARAMS, request.config_json)
            self.poll = seconds(cfg["poll"])
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pyjsonl source: {e}")
        self.dir = cfg["dir"]
        return pb.Empty()

    def lines(self, partition):
        with self.lock:
            if partition not in self.files:
                with open(partition, encoding="utf-8") as f:
                    self.files[partition] = f.readlines()
            return self.files[partition]

    def partitions(self):
        return sorted(os.path.normpath(f) for f in glob.glob(os.path.join(self.dir, "*.jsonl")))

    def Read(self, request, context):
        hit("source.read.before", request.batch, context)
        from_ = offsets(getattr(request, "from"))  # `from` is a Python keyword
        stop = offsets(request.stop) if request.has_stop else None
        deadline = time.monotonic() + request.max_wait_nanos / 1e9
        while True:
            records, start, until = self.collect(from_, request.max_records, request.max_bytes, stop)
            # Files never change: with stop offsets (drain) there is nothing to wait for.
            if records or stop is not None or time.monotonic() >= deadline or not context.is_active():
                break
            time.sleep(min(self.poll, max(0, deadline - time.monotonic())))
        try:
            check_read(lambda p: start.get(p), request.max_records, stop, records, until)
        except ValueError as e:
            context.abort(grpc.StatusCode.INTERNAL, f"pyjsonl source broke the Read contract: {e}")
        yield from send(context, request.batch, records, start, until, "source.read.partial", "source.read.after")

    def collect(self, from_, max_records, max_bytes, stop):
        """The next batch from from_: records of each partition in turn, in
        offset order, within the limits. Absent partitions start at the first
        line; -2 (earliest) is the first line, -1 (latest) the end of the file."""
        records, start, until, nbytes = [], {}, {}, 0
        for p in self.partitions():
            if stop is not None and p not in stop:
                continue
            lines = self.lines(p)
            first = {-2: 0, -1: len(lines)}.get(from_.get(p, 0), from_.get(p, 0))
            end = len(lines) if stop is None else min(len(lines), stop[p])
            o = first
            while o < end and len(records) < max_records:
                r = from_line(p, o, lines[o])
                if max_bytes > 0 and records and nbytes + size(r) > max_bytes:
                    break
                records.append(r)
                nbytes += size(r)
                o += 1
            start[p], until[p] = first, o
            if len(records) >= max_records or (max_bytes > 0 and nbytes >= max_bytes):
                break
        return records, start, until

    def Replay(self, request, context):
        hit("source.replay.before", request.batch, context)
        from_, until = offsets(getattr(request, "from")), offsets(request.until)
        records = [from_line(p, o, self.lines(p)[o])
                   for p in sorted(until) for o in range(from_.get(p, until[p]), until[p])]
        yield from send(context, request.batch, records, from_, until, None, None)

    def End(self, request, context):
        return pb.Offsets(offsets={p: len(self.lines(p)) for p in self.partitions()})

    def Ack(self, request, context):
        hit("source.ack.before", request.batch, context)
        # Nothing to do: a replay may still need every line, so nothing is dropped.
        hit("source.ack.after", request.batch, context)
        return pb.Empty()

    def Close(self, request, context):
        return pb.Empty()


def send(context, batch, records, start, until, partial_point, after_point):
    """The reply stream of Read and Replay: chunks of records, then a last
    message with the range and the record count. The host takes the batch from
    that last message: `records` 0 makes it drop the chunks already sent."""
    k = partial(partial_point, batch, len(records)) if partial_point else None
    for c in chunks(records if k is None else records[:k]):
        yield pb.ReadReply(chunk=c)
    if k is not None:
        fail(partial_point, batch, context)
    if after_point:
        hit(after_point, batch, context)
    yield pb.ReadReply(last=True, until=pb.Offsets(offsets=until), records=len(records),
                       bytes=sum(size(r) for r in records), **{"from": pb.Offsets(offsets=start)})

# ---------------------------------------------------------------------- sink


class Sink(pbgrpc.SinkServicer):
    def Spec(self, request, context):
        return spec("pyjsonl", "sink", ["idempotent"], ["lister"], SINK_PARAMS)

    def Open(self, request, context):
        try:
            cfg = config(SINK_PARAMS, request.config_json)
            os.makedirs(cfg["dir"], exist_ok=True)
        except (ValueError, OSError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pyjsonl sink: {e}")
        self.dir, self.fsync, self.pipeline = cfg["dir"], cfg["fsync"], request.pipeline
        return pb.Empty()

    def Write(self, request_iterator, context):
        batch, records = None, []
        for m in request_iterator:  # the first message holds the batch id and range
            if batch is None:
                batch = m.batch
            records.extend(unpack(m.chunk))
        if batch is None:
            context.abort(grpc.StatusCode.INTERNAL, "the host broke the Write contract: the write stream carried no batch")
        hit("sink.write.before", batch, context)
        k = partial("sink.write.partial", batch, len(records))
        if k is not None:
            self.write(batch, records[:k])
            fail("sink.write.partial", batch, context)
        self.write(batch, records)
        hit("sink.write.after", batch, context)
        return pb.Empty()

    def write(self, batch, records):
        """Writes the batch to a temporary file and renames it over the batch's
        file: a reader sees all of the batch or none of it, and the write is
        durable when it returns."""
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(to_line(r) for r in records)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.rename(tmp, os.path.join(self.dir, f"{self.pipeline}-{batch:012d}.jsonl"))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        if self.fsync:
            d = os.open(self.dir, os.O_RDONLY)
            os.fsync(d)
            os.close(d)

    def List(self, request, context):
        """The value of every record held for the pipeline (conformance read-back)."""
        values, n = [], 0
        for path in sorted(glob.glob(os.path.join(self.dir, glob.escape(self.pipeline) + "-*.jsonl"))):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    values.append(from_line("", 0, line).value)
                    n += len(values[-1])
                    if n >= CHUNK_BYTES:
                        yield pb.ListReply(values=values)
                        values, n = [], 0
        yield pb.ListReply(values=values)

    def Close(self, request, context):
        return pb.Empty()

# ----------------------------------------------------------------- processor


class Processor(pbgrpc.ProcessorServicer):
    def Spec(self, request, context):
        return spec("pyjsonl", "processor", ["deterministic"], [], PROCESSOR_PARAMS,
                    summary="Copies JSON object records (an example processor in Python)")

    def Open(self, request, context):
        try:
            cfg = config(PROCESSOR_PARAMS, request.config_json)
            if not isinstance(cfg["copies"], int) or cfg["copies"] < 0:
                raise ValueError(f"copies = {cfg['copies']!r}: want a whole number >= 0")
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pyjsonl processor: {e}")
        self.copies = cfg["copies"]
        return pb.Empty()

    def Process(self, request_iterator, context):
        """Reads the whole batch (the first message holds its id), then answers
        with the records it became, in chunks, and the rejected ones. Every
        output record keeps the partition and offset of the record it was made
        from: the host checks that, and numbers the copies (Record.index 0, 1, …)
        in output order, so the copies of one record must always come out in the
        same order."""
        batch, records = None, []
        for m in request_iterator:
            if batch is None:
                batch = m.batch
            records.extend(unpack(m.chunk))
        if batch is None:
            context.abort(grpc.StatusCode.INTERNAL, "the host broke the Process contract: the process stream carried no batch")
        out, rejected = [], []
        for i, r in enumerate(records):
            try:
                obj = json.loads(r.value)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                rejected.append(pb.Rejection(index=i, reason="value is not a JSON object"))
                continue
            for c in range(self.copies):
                out.append(r._replace(value=json.dumps({**obj, "copy": c}, separators=(",", ":")).encode()))
        for c in chunks(out):
            yield pb.ProcessReply(chunk=c)
        yield pb.ProcessReply(rejected=rejected)

    def Close(self, request, context):
        return pb.Empty()

# ----------------------------------------------------------------- handshake


def server_certificate():
    """A self-signed certificate for the name the host checks, "localhost"
    (Go wants it as a DNS name in the subject alternative names)."""
    from cryptography import x509  # imported here: only TLS needs it
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def die_with_parent():
    """Exits within a second of the host's death, even after kill -9: an orphan
    sink still writing while a restarted host replays its batch would tear it."""
    parent = os.getppid()
    if parent == 1 and os.environ.get("CONNECTD_HOST_PID") != "1":
        die()  # re-parented to init: the host is gone (unless the host is pid 1)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        die()
    threading.Thread(target=watch, daemon=True).start()


def main():
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.exit("This is a connectd plugin: connectd starts it (plugin_dir, or its path in a pipeline).")
    if PROTOCOL_VERSION not in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", PROTOCOL_VERSION).split(","):
        sys.exit(f"pyjsonl speaks protocol version {PROTOCOL_VERSION}; the host wants {os.environ['PLUGIN_PROTOCOL_VERSIONS']}")
    try:
        arm_faults(os.environ.get("CONNECTD_FAULT", ""))
    except ValueError as e:
        sys.exit(f"pyjsonl: {e}")
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the host's to handle: it drains first

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)])
    pbgrpc.add_SourceServicer_to_server(Source(), server)
    pbgrpc.add_SinkServicer_to_server(Sink(), server)
    pbgrpc.add_ProcessorServicer_to_server(Processor(), server)
    # go-plugin's plugin.GRPCController/Shutdown: the host calls it to stop the
    # plugin, then waits up to 2 s for the process to exit. Its request and
    # reply are plugin.Empty, a message without fields: empty bytes, no stubs
    # (and no deserializer: one that returns None fails every call).
    shutdown = threading.Event()

    def stop(request, context):
        shutdown.set()
        return b""
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "plugin.GRPCController", {"Shutdown": grpc.unary_unary_rpc_method_handler(stop)})])

    # The socket goes in the host's directory, PLUGIN_UNIX_SOCKET_DIR: mode
    # 0700, so only the host's user (and root) can connect. A host that does
    # not set it (an older connectd) gets a fresh directory of our own,
    # 0700 too (mkdtemp).
    sockdir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR", "")
    owndir = "" if sockdir else tempfile.mkdtemp(prefix="pyjsonl-")
    socket = os.path.join(sockdir or owndir, f"pyjsonl-{os.getpid()}.sock")
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
    if client_cert:
        # The host asks for mTLS (CONNECTD_PLUGIN_TLS=1): trust only the
        # host's certificate, send ours back as base64 of the DER *without
        # padding* (Go's base64.RawStdEncoding).
        key_pem, cert_pem, cert_der = server_certificate()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(),
                                            require_client_auth=True)
        server.add_secure_port("unix:" + socket, creds)
        cert_field = base64.b64encode(cert_der).decode().rstrip("=")
    else:
        # The default: plain gRPC (the directory is the protection), and an
        # empty 6th field: a certificate the host did not ask for fails its start.
        server.add_insecure_port("unix:" + socket)
        cert_field = ""
    server.start()
    print(f"1|{PROTOCOL_VERSION}|unix|{socket}|grpc|{cert_field}", flush=True)
    shutdown.wait()
    server.stop(grace=1).wait()
    if owndir:
        shutil.rmtree(owndir, ignore_errors=True)
    else:
        try:
            os.remove(socket)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
