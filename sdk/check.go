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
	last := map[string]int64{}
	for i := range rd.Records {
		pos := rd.Records[i].Position
		u, ok := rd.Until[pos.Partition]
		if !ok {
			return fmt.Errorf("record %d (%s) is in a partition missing from until", i, pos)
		}
		if pos.Offset >= u {
			return fmt.Errorf("record %d (%s) is at or past until %d", i, pos, u)
		}
		if f, ok := start(pos.Partition); ok && pos.Offset < f {
			return fmt.Errorf("record %d (%s) is before the partition's start %d", i, pos, f)
		}
		if l, ok := last[pos.Partition]; ok && pos.Offset <= l {
			return fmt.Errorf("record %d (%s) does not come after the previous record of its partition (offset %d)", i, pos, l)
		}
		last[pos.Partition] = pos.Offset
		if limits.Stop != nil {
			s, ok := limits.Stop[pos.Partition]
			if !ok {
				return fmt.Errorf("record %d (%s) is in a partition that the stop offsets do not name", i, pos)
			}
			if pos.Offset >= s {
				return fmt.Errorf("record %d (%s) is at or past stop offset %d", i, pos, s)
			}
		}
	}
	return nil
}
