package file

import (
	"hash/fnv"

	"github.com/connectd/connectd/sdk"
)

// taskOf returns the task, in [0, tasks), that reads the file of partition
// name when the pipeline runs as tasks tasks: FNV-1a of the name mod tasks.
// Files have no numbers, so the name's hash is the rule that depends only
// on the file and the count: every task computes the same assignment
// alone, and a file that appears later goes to one task for good. With few
// files the shares may be uneven.
func taskOf(name string, tasks int) int {
	if tasks <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(tasks))
}

// foreign returns a configuration error when offsets name a file that
// belongs to another task than this source's: offsets written when the
// pipeline ran with another parallelism.
func (s *Source) foreign(what string, o sdk.Offsets) error {
	if s.tasks <= 1 {
		return nil
	}
	for name := range o {
		if k := taskOf(name, s.tasks); k != s.task {
			return sdk.Configf("%s names file %s, which belongs to task %d of %d, not to this task %d: were these offsets written with another parallelism? Move the pipeline's tasks with \"connectd offsets reset\"",
				what, name, k, s.tasks, s.task)
		}
	}
	return nil
}
