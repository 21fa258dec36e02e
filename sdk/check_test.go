package sdk

import (
	"strings"
	"testing"
)

func recs(ps ...Position) []Record {
	out := make([]Record, len(ps))
	for i, p := range ps {
		out[i] = Record{Value: []byte(p.String()), Position: p}
	}
	return out
}

func at(p string, off int64) Position { return Position{Partition: p, Offset: off} }

func TestCheckRead(t *testing.T) {
	tests := []struct {
		name    string
		from    Offsets
		limits  Limits
		rd      Read
		wantErr string // "" = the read keeps the contract
	}{
		{
			name:   "valid interleaved partitions",
			from:   Offsets{"t/0": 0, "t/1": 5},
			limits: Limits{MaxRecords: 3},
			rd:     Read{Records: recs(at("t/0", 0), at("t/1", 5), at("t/0", 1)), Until: Offsets{"t/0": 2, "t/1": 6}},
		},
		{
			name: "valid empty read",
			from: Offsets{"t/0": 4},
			rd:   Read{},
		},
		{
			name: "valid empty read with unchanged until",
			from: Offsets{"t/0": 4},
			rd:   Read{Until: Offsets{"t/0": 4}},
		},
		{
			name: "valid gaps in offsets (compacted topic)",
			from: Offsets{"t/0": 0},
			rd:   Read{Records: recs(at("t/0", 3), at("t/0", 10)), Until: Offsets{"t/0": 20}},
		},
		{
			name: "valid earliest resolved by rd.From",
			from: Offsets{"t/0": Earliest},
			rd:   Read{Records: recs(at("t/0", 10), at("t/0", 11)), From: Offsets{"t/0": 10}, Until: Offsets{"t/0": 12}},
		},
		{
			name: "valid latest left unresolved",
			from: Offsets{"t/0": Latest},
			rd:   Read{Records: recs(at("t/0", 100)), Until: Offsets{"t/0": 101}},
		},
		{
			name: "valid new partition not in from",
			from: Offsets{"t/0": 3},
			rd:   Read{Records: recs(at("t/9", 0)), Until: Offsets{"t/9": 1}},
		},
		{
			name:   "valid drain before stop",
			from:   Offsets{"t/0": 0, "t/1": 0},
			limits: Limits{MaxRecords: 10, Stop: Offsets{"t/0": 2, "t/1": 0}},
			rd:     Read{Records: recs(at("t/0", 0), at("t/0", 1)), Until: Offsets{"t/0": 2}},
		},
		{
			name:   "valid no max_records limit when zero",
			from:   Offsets{"t/0": 0},
			limits: Limits{MaxRecords: 0},
			rd:     Read{Records: recs(at("t/0", 0), at("t/0", 1), at("t/0", 2)), Until: Offsets{"t/0": 3}},
		},
		{
			name:    "too many records",
			from:    Offsets{"t/0": 0},
			limits:  Limits{MaxRecords: 2},
			rd:      Read{Records: recs(at("t/0", 0), at("t/0", 1), at("t/0", 2)), Until: Offsets{"t/0": 3}},
			wantErr: "read returned 3 records, more than max_records 2",
		},
		{
			name:    "negative until",
			from:    Offsets{"t/0": Latest},
			rd:      Read{Until: Offsets{"t/0": Latest}},
			wantErr: `until offset -1 for partition "t/0" is negative`,
		},
		{
			name:    "partition moves backwards from request",
			from:    Offsets{"t/0": 5},
			rd:      Read{Until: Offsets{"t/0": 3}},
			wantErr: `partition "t/0" moves backwards: from 5, until 3`,
		},
		{
			name:    "partition moves backwards from resolved start",
			from:    Offsets{"t/0": Earliest},
			rd:      Read{From: Offsets{"t/0": 8}, Until: Offsets{"t/0": 7}},
			wantErr: `partition "t/0" moves backwards: from 8, until 7`,
		},
		{
			name:    "record at until",
			from:    Offsets{"t/0": 0},
			rd:      Read{Records: recs(at("t/0", 0), at("t/0", 1)), Until: Offsets{"t/0": 1}},
			wantErr: "record 1 (t/0@1) is at or past until 1",
		},
		{
			name:    "record past until",
			from:    Offsets{"t/0": 0},
			rd:      Read{Records: recs(at("t/0", 7)), Until: Offsets{"t/0": 5}},
			wantErr: "record 0 (t/0@7) is at or past until 5",
		},
		{
			name:    "partition not in until",
			from:    Offsets{"t/0": 0},
			rd:      Read{Records: recs(at("t/0", 0), at("t/1", 0)), Until: Offsets{"t/0": 1}},
			wantErr: "record 1 (t/1@0) is in a partition missing from until",
		},
		{
			name:    "record before start",
			from:    Offsets{"t/0": 5},
			rd:      Read{Records: recs(at("t/0", 4)), Until: Offsets{"t/0": 6}},
			wantErr: "record 0 (t/0@4) is before the partition's start 5",
		},
		{
			name:    "record before resolved start",
			from:    Offsets{"t/0": Earliest},
			rd:      Read{Records: recs(at("t/0", 1)), From: Offsets{"t/0": 2}, Until: Offsets{"t/0": 3}},
			wantErr: "record 0 (t/0@1) is before the partition's start 2",
		},
		{
			name:    "out of order offsets",
			from:    Offsets{"t/0": 0},
			rd:      Read{Records: recs(at("t/0", 1), at("t/0", 0)), Until: Offsets{"t/0": 2}},
			wantErr: "record 1 (t/0@0) does not come after the previous record of its partition (offset 1)",
		},
		{
			name:    "repeated offset",
			from:    Offsets{"t/0": 0},
			rd:      Read{Records: recs(at("t/0", 0), at("t/1", 0), at("t/0", 0)), Until: Offsets{"t/0": 1, "t/1": 1}},
			wantErr: "record 2 (t/0@0) does not come after",
		},
		{
			name:    "record at stop",
			from:    Offsets{"t/0": 0},
			limits:  Limits{MaxRecords: 10, Stop: Offsets{"t/0": 1}},
			rd:      Read{Records: recs(at("t/0", 0), at("t/0", 1)), Until: Offsets{"t/0": 2}},
			wantErr: "record 1 (t/0@1) is at or past stop offset 1",
		},
		{
			name:    "partition not named by stop",
			from:    Offsets{"t/0": 0, "t/1": 0},
			limits:  Limits{MaxRecords: 10, Stop: Offsets{"t/1": 10}},
			rd:      Read{Records: recs(at("t/0", 0)), Until: Offsets{"t/0": 1}},
			wantErr: "record 0 (t/0@0) is in a partition that the stop offsets do not name",
		},
		{
			name:    "empty non-nil stop names nothing",
			from:    Offsets{"t/0": 0},
			limits:  Limits{MaxRecords: 10, Stop: Offsets{}},
			rd:      Read{Records: recs(at("t/0", 0)), Until: Offsets{"t/0": 1}},
			wantErr: "stop offsets do not name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRead(tt.from, tt.limits, tt.rd)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckRead: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckRead = nil, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckRead error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// Past a few partitions CheckRead finds a record's partition in a map: the
// same verdicts must hold there.
func TestCheckReadManyPartitions(t *testing.T) {
	var ps []Position
	until := Offsets{}
	for round := int64(0); round < 3; round++ {
		for p := 0; p < 20; p++ {
			name := "t/" + string(rune('a'+p))
			ps = append(ps, at(name, round))
			until[name] = 3
		}
	}
	if err := CheckRead(Offsets{}, Limits{}, Read{Records: recs(ps...), Until: until}); err != nil {
		t.Fatalf("valid read: %v", err)
	}
	bad := append(append([]Position(nil), ps...), at("t/q", 1))
	if err := CheckRead(Offsets{}, Limits{}, Read{Records: recs(bad...), Until: until}); err == nil || !strings.Contains(err.Error(), "does not come after") {
		t.Fatalf("a partition going back: %v", err)
	}
	bad = append(append([]Position(nil), ps...), at("t/zz", 0))
	if err := CheckRead(Offsets{}, Limits{}, Read{Records: recs(bad...), Until: until}); err == nil || !strings.Contains(err.Error(), "missing from until") {
		t.Fatalf("a partition missing from until: %v", err)
	}
	stop := until.Clone()
	stop["t/c"] = 2
	if err := CheckRead(Offsets{}, Limits{Stop: stop}, Read{Records: recs(ps...), Until: until}); err == nil || !strings.Contains(err.Error(), "stop offset 2") {
		t.Fatalf("a record past stop: %v", err)
	}
}
