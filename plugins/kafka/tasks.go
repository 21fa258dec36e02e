package kafka

import (
	"hash/fnv"

	"github.com/connectd/connectd/sdk"
)

// taskOf returns the task, in [0, tasks), that reads partition p when the
// pipeline runs as tasks tasks: (FNV-1a of the topic + the partition number)
// mod tasks.
//
// The rule depends only on the partition and the task count, so every task
// computes the same assignment without talking to the others, and a
// partition added later (Kafka numbers them on from the last) goes to a task
// at once and for good: no partition ever moves while the count stays. The
// number spreads a topic's partitions evenly (consecutive numbers go to
// consecutive tasks, so the tasks' shares differ by at most one partition
// per topic, before and after partitions are added), which a hash of the
// whole name would not do for a few partitions; the topic's hash spreads
// the first partitions of several topics over different tasks instead of
// piling all partitions 0 on task 0.
func taskOf(p tp, tasks int) int {
	if tasks <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(p.topic))
	return int((uint64(h.Sum32()) + uint64(p.part)) % uint64(tasks))
}

// owns reports whether this source's task reads partition p.
func (s *Source) owns(p tp) bool { return taskOf(p, s.tasks) == s.task }

// foreign returns a configuration error when offsets name a partition of the
// topics that belongs to another task: offsets written when the pipeline ran
// with another parallelism, which would read partitions twice or never.
func (s *Source) foreign(what string, o sdk.Offsets) error {
	if s.tasks <= 1 {
		return nil
	}
	for name := range o {
		if p, ok := parseTP(name); ok && s.topicSet[p.topic] && !s.owns(p) {
			return sdk.Configf("%s names partition %s, which belongs to task %d of %d, not to this task %d: were these offsets written with another parallelism? Move the pipeline's tasks with \"connectd offsets reset\"",
				what, name, taskOf(p, s.tasks), s.tasks, s.task)
		}
	}
	return nil
}
