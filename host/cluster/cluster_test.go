package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/internal/pg/pgtest"
)

var pgURL string

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pgURL)) }

const ttl = time.Second

// group is the units of a test and who runs them: it fails the test when two
// workers run one unit at once.
type group struct {
	t      *testing.T
	schema string
	units  []string
	mu     sync.Mutex
	owner  map[string]string // unit → worker running it now
	epochs map[string][]int64
	fence  map[string]bool // units whose next Run returns a fenced error
	// overlap allows a unit to start while another worker still runs it
	// (the old holder has not learnt yet that it lost the lease).
	overlap bool
}

func newGroup(t *testing.T, n int) *group {
	g := &group{t: t, schema: pgtest.Schema(t, pgURL, "cluster"), owner: map[string]string{}, epochs: map[string][]int64{}, fence: map[string]bool{}}
	for i := range n {
		g.units = append(g.units, fmt.Sprintf("u%d", i))
	}
	return g
}

// worker starts a worker of g; stop makes it leave and waits.
func (g *group) worker(id string) (w *Worker, stop func() error) {
	g.t.Helper()
	w, err := New(Options{URL: pgURL, Schema: g.schema, Units: g.units, ID: id, TTL: ttl,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Run: func(ctx context.Context, l Lease) error {
			g.mu.Lock()
			if o := g.owner[l.Name]; o != "" && !g.overlap {
				g.t.Errorf("unit %s: worker %s starts it while %s runs it", l.Name, id, o)
			}
			g.owner[l.Name] = id
			g.epochs[l.Name] = append(g.epochs[l.Name], l.Epoch)
			fenced := g.fence[l.Name]
			delete(g.fence, l.Name)
			g.mu.Unlock()
			if !fenced {
				<-ctx.Done()
			}
			g.mu.Lock()
			if g.owner[l.Name] == id {
				delete(g.owner, l.Name)
			}
			g.mu.Unlock()
			if fenced {
				return fmt.Errorf("batch 3: %w", checkpoint.ErrFenced)
			}
			return nil
		}})
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err2 error
	stop = func() error {
		once.Do(func() { cancel(); err2 = <-done })
		return err2
	}
	g.t.Cleanup(func() { stop() })
	return w, stop
}

// wait waits until every worker holds want[i] units and every unit runs,
// and returns how long it took.
func (g *group) wait(what string, ws []*Worker, want ...int) time.Duration {
	g.t.Helper()
	start := time.Now()
	for {
		ok := true
		for i, w := range ws {
			if len(w.Leases()) != want[i] {
				ok = false
			}
		}
		g.mu.Lock()
		if len(g.owner) != len(g.units) {
			ok = false
		}
		g.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > 10*ttl {
			var got []int
			for _, w := range ws {
				got = append(got, len(w.Leases()))
			}
			g.t.Fatalf("%s: after %s the workers hold %v units, want %v", what, time.Since(start).Round(time.Millisecond), got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpreadJoinLeave: 6 units over 1, 2, then 3 workers spread 6, 3+3,
// 2+2+2; when one leaves they spread 3+3 again, and each takeover adds one
// to the unit's epoch.
func TestSpreadJoinLeave(t *testing.T) {
	g := newGroup(t, 6)
	a, _ := g.worker("a")
	g.wait("one worker", []*Worker{a}, 6)
	b, _ := g.worker("b")
	d := g.wait("a second joins", []*Worker{a, b}, 3, 3)
	t.Logf("units moved to a joining worker in %s (TTL %s)", d.Round(time.Millisecond), ttl)
	c, stopC := g.worker("c")
	g.wait("a third joins", []*Worker{a, b, c}, 2, 2, 2)
	if err := stopC(); err != nil {
		t.Fatal(err)
	}
	d = g.wait("the third leaves", []*Worker{a, b}, 3, 3)
	t.Logf("units of a leaving worker moved in %s", d.Round(time.Millisecond))
	g.mu.Lock()
	defer g.mu.Unlock()
	for u, es := range g.epochs {
		for i := 1; i < len(es); i++ {
			if es[i] <= es[i-1] {
				t.Errorf("unit %s: epochs %v do not grow at each takeover", u, es)
			}
		}
		if es[0] != 1 {
			t.Errorf("unit %s: first epoch %d, want 1", u, es[0])
		}
	}
}

// TestTakeover: a unit leased by a worker whose session is gone (killed) is
// taken at the next tick; one whose holder is live but silent (stopped: its
// session still holds its lock, its heartbeat is old) only once its lease
// expired.
func TestTakeover(t *testing.T) {
	g := newGroup(t, 2)
	// Two ghost holders, as a killed and a stopped worker leave them.
	c := pgtest.Conn(t, pgURL)
	ctx := context.Background()
	a, _ := g.worker("a")
	g.wait("one worker", []*Worker{a}, 2)
	held := a.Leases()
	// Pretend "dead" (no session lock) holds u0 and "stopped" (its lock
	// held by this test's session) holds u1, both with 3 TTLs left.
	stopped, _ := New(Options{URL: pgURL, Schema: g.schema, Units: g.units, ID: "stopped", Run: g.noRun})
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", stopped.key); err != nil {
		t.Fatal(err)
	}
	k := uint64(stopped.key)
	if _, err := c.Exec(ctx, fmt.Sprintf(`INSERT INTO %q.%s VALUES ('dead', 'h', 1, now(), now(), 0, 0), ('stopped', 'h', 2, now(), now() - interval '1 hour', %d, %d)`,
		g.schema, WorkerTable, int64(k>>32), int64(uint32(k)))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, l := range held {
		holder := map[string]string{"u0": "dead", "u1": "stopped"}[l.Name]
		if _, err := c.Exec(ctx, fmt.Sprintf(`UPDATE %q.connectd_lease SET worker = $1, epoch = epoch + 1, expires = now() + $2 * interval '1 millisecond' WHERE name = $3`, g.schema),
			holder, ms(3*ttl), l.Name); err != nil {
			t.Fatal(err)
		}
	}
	// a finds both leases taken over, stops its units, and takes them back
	// as they free up.
	var dead, silent time.Duration
	for dead == 0 || silent == 0 {
		if time.Since(start) > 10*ttl {
			t.Fatalf("after %s: dead's unit back %s, stopped's %s", time.Since(start), dead, silent)
		}
		for _, l := range a.Leases() {
			if l.Epoch < 3 {
				continue
			}
			if l.Name == "u0" && dead == 0 {
				dead = time.Since(start)
			}
			if l.Name == "u1" && silent == 0 {
				silent = time.Since(start)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("taken over from a dead holder in %s, from a stopped one in %s (its lease: 3 TTLs = %s)", dead.Round(time.Millisecond), silent.Round(time.Millisecond), 3*ttl)
	if dead > 3*ttl/2 {
		t.Errorf("a dead holder's unit took %s to move, want about a tick (%s)", dead, ttl/4)
	}
	if silent < 3*ttl-ttl/4 {
		t.Errorf("a live holder's unit moved after %s, before its lease expired (%s)", silent, 3*ttl)
	}
}

// TestFencedUnitDropped: a unit that ends fenced is dropped, the worker goes
// on (and takes the lease again later, under a newer epoch).
func TestFencedUnitDropped(t *testing.T) {
	g := newGroup(t, 1)
	g.fence["u0"] = true
	a, stop := g.worker("a")
	g.wait("one worker", []*Worker{a}, 1)
	if l := a.Leases(); l[0].Epoch != 2 {
		t.Errorf("after the fenced run, the lease's epoch is %d, want 2", l[0].Epoch)
	}
	if err := stop(); err != nil {
		t.Errorf("the worker ended with %v after a fenced unit", err)
	}
}

func (g *group) noRun(ctx context.Context, l Lease) error { return nil }

// TestConnectionCut: the server ends worker a's session (as a cut network
// would, seen from the server): b takes a's units at its next tick, since
// a's session lock is gone; a reconnects, finds its leases gone, stops
// those units without failing, and gets its share back: 1 + 1 again.
func TestConnectionCut(t *testing.T) {
	g := newGroup(t, 2)
	g.overlap = true
	a, stopA := g.worker("a")
	g.wait("one worker", []*Worker{a}, 2)
	b, _ := g.worker("b")
	g.wait("two workers", []*Worker{a, b}, 1, 1)
	before := a.Leases()[0]
	c := pgtest.Conn(t, pgURL)
	k := uint64(a.key)
	var ended bool
	if err := c.QueryRow(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
	AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`, int64(k>>32), int64(uint32(k))).Scan(&ended); err != nil || !ended {
		t.Fatalf("ending a's session: %v %v", ended, err)
	}
	start := time.Now()
	for {
		if len(b.Leases()) == 2 {
			break
		}
		if time.Since(start) > 5*ttl {
			t.Fatalf("b did not take a's unit after a's session ended (b holds %v)", b.Leases())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("b took a's unit %s after the server ended a's session", time.Since(start).Round(time.Millisecond))
	g.wait("a rejoins", []*Worker{a, b}, 1, 1)
	g.mu.Lock()
	es := g.epochs[before.Name]
	g.mu.Unlock()
	if len(es) < 2 || es[len(es)-1] <= before.Epoch {
		t.Errorf("unit %s: epochs %v after the takeover, want one above %d", before.Name, es, before.Epoch)
	}
	if err := stopA(); err != nil {
		t.Errorf("a ended with %v after its connection was cut", err)
	}
}
