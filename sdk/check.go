package sdk

import "fmt"

// CheckRead reports how rd breaks the Source.Read contract for a read that
// started at from with limits: a record outside its partition's range, a
// partition that moves backwards, more records than MaxRecords, a record at or
// past Stop. The sdk applies it to every Read before the host sees it, and
// sdktest applies it in tests.
func CheckRead(from Offsets, limits Limits, rd Read) error {
	if limits.MaxRecords > 0 && len(rd.Records) > limits.MaxRecords {
		return fmt.Errorf("read returned %d records, more than max_records %d", len(rd.Records), limits.MaxRecords)
	}
	start := func(p string) (int64, bool) {
		if f, ok := rd.From[p]; ok {
			return f, true
		}
		f, ok := from[p]
		return f, ok && f >= 0
	}
	for p, u := range rd.Until {
		if u < 0 {
			return fmt.Errorf("until offset %d for partition %q is negative", u, p)
		}
		if f, ok := start(p); ok && u < f {
			return fmt.Errorf("partition %q moves backwards: from %d, until %d", p, f, u)
		}
	}
	// One lookup per record: the state of its partition, found by name in a
	// short list (records of a partition often come together) or, past a few
	// partitions, in a map.
	type part struct {
		name             string
		until, start     int64
		hasStart         bool
		last             int64
		hasLast          bool
		stop             int64
		hasStop, inUntil bool
	}
	var parts []part
	var index map[string]int
	cur := -1
	find := func(name string) int {
		if cur >= 0 && parts[cur].name == name {
			return cur
		}
		if index != nil {
			if i, ok := index[name]; ok {
				return i
			}
		} else {
			for i := range parts {
				if parts[i].name == name {
					return i
				}
			}
		}
		st := part{name: name}
		st.until, st.inUntil = rd.Until[name]
		st.start, st.hasStart = start(name)
		if limits.Stop != nil {
			st.stop, st.hasStop = limits.Stop[name]
		}
		parts = append(parts, st)
		if index == nil && len(parts) > 8 {
			index = make(map[string]int, 2*len(parts))
			for i := range parts {
				index[parts[i].name] = i
			}
		} else if index != nil {
			index[name] = len(parts) - 1
		}
		return len(parts) - 1
	}
	for i := range rd.Records {
		pos := rd.Records[i].Position
		cur = find(pos.Partition)
		st := &parts[cur]
		if !st.inUntil {
			return fmt.Errorf("record %d (%s) is in a partition missing from until", i, pos)
		}
		if pos.Offset >= st.until {
			return fmt.Errorf("record %d (%s) is at or past until %d", i, pos, st.until)
		}
		if st.hasStart && pos.Offset < st.start {
			return fmt.Errorf("record %d (%s) is before the partition's start %d", i, pos, st.start)
		}
		if st.hasLast && pos.Offset <= st.last {
			return fmt.Errorf("record %d (%s) does not come after the previous record of its partition (offset %d)", i, pos, st.last)
		}
		st.last, st.hasLast = pos.Offset, true
		if limits.Stop != nil {
			if !st.hasStop {
				return fmt.Errorf("record %d (%s) is in a partition that the stop offsets do not name", i, pos)
			}
			if pos.Offset >= st.stop {
				return fmt.Errorf("record %d (%s) is at or past stop offset %d", i, pos, st.stop)
			}
		}
	}
	return nil
}
