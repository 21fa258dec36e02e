package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Special row names next to the fault points.
const (
	// PointNone is the row of a run without any crash.
	PointNone = "none"
	// PointSoak is the row of the seeded random SIGKILL soak.
	PointSoak = "soak"
	// PointContract is the row of the contract checks; their Guarantee is the
	// capability checked ("replayable", "idempotent", "transactional").
	PointContract = "contract"
	// PointNetwork is the row of the network faults (Options.Network): a
	// pipeline drained while the connections between its plugins and their
	// system suffer latency, resets, stalls and a partition.
	PointNetwork = "network"
)

// Result is one cell of the matrix: a guarantee under one fault point, or
// one contract check. The JSON names fault_point, guarantee, lost,
// duplicated and pass are stable: scripts rely on them.
type Result struct {
	// FaultPoint is the crash as CONNECTD_FAULT spells it ("host.write.after@2",
	// "sink.write.partial@2:1"), a crash during a recovery
	// ("recovery:host.write.after@2+host.write.after@2", see PointRecovery),
	// or PointNone, PointSoak, PointContract or PointNetwork.
	FaultPoint string `json:"fault_point"`
	// Guarantee is the pipeline's delivery guarantee, or for a contract check
	// the capability checked.
	Guarantee string `json:"guarantee"`
	// Lost is how many input ids the sink does not hold.
	Lost int `json:"lost"`
	// Duplicated is how many extra copies of input ids the sink holds.
	Duplicated int `json:"duplicated"`
	// Pass is the verdict: the guarantee held (or the contract was kept).
	Pass bool `json:"pass"`
	// Informational is true for a passing at-most-once cell that lost
	// records, which at-most-once allows.
	Informational bool `json:"informational,omitempty"`
	// Unexpected is how many records the sink holds whose id was never input.
	// Through transforms (see docs/conformance.md) Lost, Duplicated and
	// Unexpected compare the sink and the dead-letter sink with what the
	// faultless reference run left in each.
	Unexpected int `json:"unexpected,omitempty"`
	// DeadLetters is how many records the dead-letter sink holds at the
	// end, for a run with one.
	DeadLetters int `json:"dead_letters,omitempty"`
	// NotReached is true for a cell whose crash was meant for the last
	// batch of the faultless reference run, when the run drained in fewer
	// batches (the source batched the input differently): the cell judged
	// a drain without that crash, and Detail says so. The table shows
	// "pass (not reached)".
	NotReached bool `json:"not_reached,omitempty"`
	// Error says why a cell failed other than by counts: a process that did
	// not recover, a fault point that was never reached, a broken contract.
	Error string `json:"error,omitempty"`
	// Detail says what was done: the crashes of a soak, the steps of a check.
	Detail string `json:"detail,omitempty"`
	// Seconds is how long the cell took.
	Seconds float64 `json:"seconds"`
}

// Cell renders the verdict as the table shows it: "pass", "pass (5 lost)",
// "pass (3 dup)", "FAIL 3 lost 0 dup", "FAIL: reason".
func (r Result) Cell() string {
	if r.Error != "" && !r.Pass {
		return "FAIL: " + firstLine(r.Error)
	}
	if !r.Pass {
		s := fmt.Sprintf("FAIL %d lost %d dup", r.Lost, r.Duplicated)
		if r.Unexpected > 0 {
			s += fmt.Sprintf(" %d unexpected", r.Unexpected)
		}
		return s
	}
	var notes []string
	if r.Lost > 0 {
		notes = append(notes, fmt.Sprintf("%d lost", r.Lost))
	}
	if r.Duplicated > 0 {
		notes = append(notes, fmt.Sprintf("%d dup", r.Duplicated))
	}
	if r.NotReached {
		notes = append(notes, "not reached")
	}
	if len(notes) == 0 {
		return "pass"
	}
	return "pass (" + strings.Join(notes, ", ") + ")"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 90 {
		s = s[:87] + "..."
	}
	return s
}

// Report is what Run found.
type Report struct {
	// Source and Sink describe the plugins as `source "file" 0.1.0`; a role
	// under test is marked "(under test)".
	Source string `json:"source"`
	Sink   string `json:"sink"`
	// Transforms describes the chain between them (`filter → processor
	// "split" 0.1.0 under test`) and DeadLetter the dead-letter sink, for a
	// run with them.
	Transforms string `json:"transforms,omitempty"`
	DeadLetter string `json:"dead_letter,omitempty"`
	// Claimed lists the guarantees the plugins claim with their settings, in
	// the order of Guarantees; every one is tested.
	Claimed []string `json:"claimed"`
	// NotClaimed says why exactly-once is not claimed, when it is not.
	NotClaimed string `json:"not_claimed,omitempty"`
	Level      Level  `json:"level"`
	// Seed is the seed of the random SIGKILL soak.
	Seed int64 `json:"seed"`
	// ReadBack is true when every pipeline's output was also read through
	// Options.Reader and compared with the sink's List.
	ReadBack bool     `json:"read_back,omitempty"`
	Results  []Result `json:"results"`
	// Seconds is how long the whole run took.
	Seconds float64 `json:"seconds"`
}

// Passed reports whether every claimed guarantee and every contract held.
// A report without results has not passed.
func (r *Report) Passed() bool {
	if len(r.Results) == 0 {
		return false
	}
	for _, x := range r.Results {
		if !x.Pass {
			return false
		}
	}
	return true
}

// Failed returns the results that did not pass.
func (r *Report) Failed() []Result {
	var out []Result
	for _, x := range r.Results {
		if !x.Pass {
			out = append(out, x)
		}
	}
	return out
}

// Find returns the result of a fault point (as in Result.FaultPoint) and a
// guarantee, and whether there is one.
func (r *Report) Find(point, guarantee string) (Result, bool) {
	for _, x := range r.Results {
		if x.FaultPoint == point && x.Guarantee == guarantee {
			return x, true
		}
	}
	return Result{}, false
}

// WriteJSON writes the report as one indented JSON object with a results array.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	out := *r
	if out.Results == nil {
		out.Results = []Result{}
	}
	return enc.Encode(out)
}

// WriteTable writes the report for a person: a header, a table with a row
// per fault point and a column per guarantee, the contract checks, the
// failures in full, and the verdict.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "conformance (%s): %s → %s\n", r.Level, r.Source, r.Sink)
	if r.Transforms != "" || r.DeadLetter != "" {
		fmt.Fprintf(&b, "through: %s; dead letters: %s\n", r.Transforms, r.DeadLetter)
	}
	fmt.Fprintf(&b, "claimed: %s", strings.Join(r.Claimed, ", "))
	if r.NotClaimed != "" {
		fmt.Fprintf(&b, " (not exactly-once: %s)", r.NotClaimed)
	}
	fmt.Fprintf(&b, "\nsoak seed: %d (rerun with --seed %d)\n", r.Seed, r.Seed)
	if r.ReadBack {
		b.WriteString("read-back: every output also read without the sink (Options.Reader) and compared with its List\n")
	}
	b.WriteString("\n")

	var rows []string
	cells := map[string]map[string]Result{}
	var contracts []Result
	for _, x := range r.Results {
		if x.FaultPoint == PointContract {
			contracts = append(contracts, x)
			continue
		}
		if cells[x.FaultPoint] == nil {
			cells[x.FaultPoint] = map[string]Result{}
			rows = append(rows, x.FaultPoint)
		}
		cells[x.FaultPoint][x.Guarantee] = x
	}
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(&b, 2, 4, 3, ' ', 0)
		fmt.Fprint(tw, "FAULT POINT")
		for _, g := range Guarantees {
			fmt.Fprint(tw, "\t"+strings.ToUpper(g))
		}
		fmt.Fprintln(tw)
		for _, row := range rows {
			label := row
			if row == PointSoak {
				label = fmt.Sprintf("soak (seed %d)", r.Seed)
			}
			fmt.Fprint(tw, label)
			for _, g := range Guarantees {
				c, ok := cells[row][g]
				switch {
				case ok:
					fmt.Fprint(tw, "\t"+c.Cell())
				case slices.Contains(r.Claimed, g):
					fmt.Fprint(tw, "\t")
				default:
					fmt.Fprint(tw, "\t-")
				}
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	if len(contracts) > 0 {
		fmt.Fprintln(&b, "\ncontract checks (no crash):")
		tw := tabwriter.NewWriter(&b, 2, 4, 3, ' ', 0)
		for _, c := range contracts {
			fmt.Fprintf(tw, "  %s\t%s\n", c.Guarantee, c.Cell())
		}
		tw.Flush()
	}
	if failed := r.Failed(); len(failed) > 0 {
		fmt.Fprintln(&b, "\nfailures:")
		for _, f := range failed {
			fmt.Fprintf(&b, "- %s, %s: %d lost, %d duplicated", f.FaultPoint, f.Guarantee, f.Lost, f.Duplicated)
			if f.Unexpected > 0 {
				fmt.Fprintf(&b, ", %d never input", f.Unexpected)
			}
			fmt.Fprintln(&b)
			for _, s := range []string{f.Error, f.Detail} {
				if s != "" {
					fmt.Fprintf(&b, "    %s\n", strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    "))
				}
			}
		}
	}
	informational := 0
	for _, x := range r.Results {
		if x.Informational {
			informational++
		}
	}
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\n%s: %d cells, %d failed", verdict, len(r.Results), len(r.Failed()))
	if informational > 0 {
		fmt.Fprintf(&b, ", %d informational (at-most-once may lose records)", informational)
	}
	fmt.Fprintf(&b, ", %s\n", (time.Duration(r.Seconds * float64(time.Second))).Round(100*time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: one test suite, one test case
// per result named after its fault point, in a class named after its
// guarantee; informational notes go to system-out.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{
		Name:  fmt.Sprintf("connectd conformance: %s → %s", r.Source, r.Sink),
		Tests: len(r.Results),
		Time:  fmt.Sprintf("%.3f", r.Seconds),
	}
	for _, x := range r.Results {
		c := junitCase{Name: x.FaultPoint, Classname: "conformance." + x.Guarantee, Time: fmt.Sprintf("%.3f", x.Seconds)}
		if !x.Pass {
			s.Failures++
			msg := fmt.Sprintf("%s under %s: %s", x.Guarantee, x.FaultPoint, x.Cell())
			c.Failure = &junitFailure{Message: msg, Type: "conformance", Text: strings.TrimSpace(x.Error + "\n" + x.Detail)}
		} else if x.Informational || x.Detail != "" {
			c.SystemOut = strings.TrimSpace(x.Cell() + "\n" + x.Detail)
		}
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// verdict applies the guarantees' rules (docs/architecture.md) to counts: at-most-once holds iff
// nothing is duplicated, at-least-once iff nothing is lost, exactly-once iff
// both; a record that was never input fails every guarantee.
func verdict(guarantee string, lost, dup, unexpected int) (pass, informational bool) {
	if unexpected > 0 {
		return false, false
	}
	switch guarantee {
	case AtMostOnce:
		return dup == 0, dup == 0 && lost > 0
	case AtLeastOnce:
		return lost == 0, false
	case ExactlyOnce:
		return lost == 0 && dup == 0, false
	}
	return false, false
}
