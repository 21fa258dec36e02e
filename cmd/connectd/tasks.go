package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/offsets"
	"github.com/connectd/connectd/sdk"
)

// units returns what runs (config.Tasks) of file's pipelines: all of them,
// or for only (--pipeline) the tasks of the pipeline of that name, or the one
// task of that name. Its error lists the file's pipelines.
func units(file *config.File, only string) ([]*config.Pipeline, error) {
	if only == "" {
		return config.Tasks(file.Pipelines), nil
	}
	p, err := file.Pipeline(only)
	if err == nil {
		return config.Tasks([]*config.Pipeline{p}), nil
	}
	for _, u := range config.Tasks(file.Pipelines) {
		if u.Name == only {
			return []*config.Pipeline{u}, nil
		}
	}
	return nil, err
}

// taskOf says which task of which pipeline u is, for offsets show; nil for
// a pipeline that runs as one task.
func taskOf(u *config.Pipeline) *offsets.Task {
	if u.Tasks <= 1 {
		return nil
	}
	return &offsets.Task{Group: u.Group, Index: u.Task, Count: u.Tasks}
}

// checkParallelism refuses to run u when its "dir" checkpoint shows that
// its pipeline ran with another parallelism: the checkpoint of the pipeline
// run as one task in the pipeline's directory while it now runs as tasks,
// task checkpoints while it now runs as one, or the checkpoint of a task
// beyond the count. The tasks would read partitions that another checkpoint
// says are done, or miss them. (A source also refuses offsets of another
// task's partition; see sdk.CapSplittable.)
func checkParallelism(u *config.Pipeline) error {
	if u.Checkpoint.Store == config.StorePostgres {
		return nil
	}
	dir := u.Checkpoint.Dir
	if u.Tasks > 1 {
		dir = filepath.Dir(dir) // the pipeline's directory; dir is the task's
	}
	has := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "meta.json"))
		return err == nil
	}
	how := fmt.Sprintf(`to change a pipeline's parallelism, move its checkpoint directory %s aside, run "connectd offsets reset FILE --pipeline %s --task K --to '<offsets>'" for every task with the offsets its partitions reached (see "connectd offsets show"), then run it`, dir, u.Group)
	switch {
	case u.Tasks > 1 && has(dir):
		return fmt.Errorf("pipeline %q now runs as %d tasks, but %s holds its checkpoint of when it ran as one task; %s", u.Group, u.Tasks, dir, how)
	case u.Tasks > 1 && u.Task == u.Tasks-1 && has(filepath.Join(dir, config.TaskName(u.Group, u.Tasks))):
		return fmt.Errorf("pipeline %q now runs as %d tasks, but %s holds the checkpoint of task %d: it ran with a larger parallelism; %s", u.Group, u.Tasks, dir, u.Tasks, how)
	case u.Tasks <= 1 && has(filepath.Join(dir, config.TaskName(u.Group, 0))):
		return fmt.Errorf("pipeline %q now runs as one task, but %s holds the checkpoints of its tasks: it ran with parallelism > 1; %s", u.Group, dir, how)
	}
	return nil
}

// resetUnits moves the checkpoints of us (a pipeline's tasks, or one task or
// pipeline) to what --to says, all or none: every checkpoint is opened (and
// locked) and its target computed before any is written. For several tasks,
// earliest and latest apply to each task's partitions, offsets as JSON go
// each to the task whose checkpoint knows the partition, and batch:<id>
// (batch ids are per task) needs one task. It returns an exit code.
func resetUnits(us []*config.Pipeline, to string, stdout, stderr io.Writer) int {
	type unit struct {
		u      *config.Pipeline
		cp     *checkpoint.Store
		target sdk.Offsets
	}
	var all []*unit
	defer func() {
		for _, x := range all {
			x.cp.Close()
		}
	}()
	for _, u := range us {
		cp, err := openCheckpoint(context.Background(), u)
		if err != nil {
			fmt.Fprintf(stderr, "connectd offsets reset: refused: pipeline %q: %v\n", u.Name, err)
			return exitRuntime
		}
		all = append(all, &unit{u: u, cp: cp})
	}
	if len(all) == 1 {
		t, err := offsets.Target(all[0].cp, to)
		if err != nil {
			fmt.Fprintf(stderr, "connectd offsets reset: %v\n", err)
			return exitUsage
		}
		all[0].target = t
	} else {
		group := all[0].u.Group
		switch trimmed := strings.TrimSpace(to); {
		case strings.HasPrefix(trimmed, "batch:"):
			fmt.Fprintf(stderr, "connectd offsets reset: --to %q: pipeline %q runs as %d tasks, each with its own batch ids; give one task with --task K\n", to, group, len(all))
			return exitUsage
		case strings.HasPrefix(trimmed, "{"):
			var named sdk.Offsets
			if err := named.UnmarshalJSON([]byte(to)); err != nil {
				fmt.Fprintf(stderr, "connectd offsets reset: --to: %v\n", err)
				return exitUsage
			}
			parts := make([]sdk.Offsets, len(all)) // each task's share of named
			var unknown []string
			for p, off := range named {
				owner := -1
				for i, x := range all {
					if known(x.cp)[p] {
						owner = i
						break
					}
				}
				if owner < 0 {
					unknown = append(unknown, p)
					continue
				}
				if parts[owner] == nil {
					parts[owner] = sdk.Offsets{}
				}
				parts[owner][p] = off
			}
			if len(unknown) > 0 {
				fmt.Fprintf(stderr, "connectd offsets reset: --to: no task of pipeline %q knows partition(s) %s, so it cannot tell which task reads them; reset one task with --task K (the source refuses a partition that is not its task's)\n", group, strings.Join(unknown, ", "))
				return exitUsage
			}
			for i, x := range all {
				if parts[i] == nil {
					continue // none of its partitions named: it stays
				}
				b, _ := parts[i].MarshalJSON()
				t, err := offsets.Target(x.cp, string(b))
				if err != nil {
					fmt.Fprintf(stderr, "connectd offsets reset: task %q: %v\n", x.u.Name, err)
					return exitUsage
				}
				x.target = t
			}
		default:
			for _, x := range all {
				t, err := offsets.Target(x.cp, to)
				if err != nil {
					fmt.Fprintf(stderr, "connectd offsets reset: task %q: %v\n", x.u.Name, err)
					return exitUsage
				}
				x.target = t
			}
		}
	}
	for _, x := range all {
		if x.target == nil {
			fmt.Fprintf(stdout, "pipeline %q: unchanged (--to names none of its partitions)\n", x.u.Name)
			continue
		}
		before := x.cp.Committed()
		e, err := x.cp.Reset(x.target, "offsets reset --to "+to)
		if err != nil {
			fmt.Fprintf(stderr, "connectd offsets reset: pipeline %q: %v\n", x.u.Name, err)
			return exitRuntime
		}
		fmt.Fprintf(stdout, "pipeline %q: reset (batch %d); it continues from %s\n", x.u.Name, e.Batch, e.Until)
		offsets.WriteChanges(stdout, offsets.Changes(before, e.Until))
		if len(before) == 0 && strings.HasPrefix(strings.TrimSpace(to), "{") {
			fmt.Fprintln(stderr, "connectd offsets reset: note: the checkpoint knows no partition yet, so these could not be checked; the source checks them when the pipeline runs")
		}
	}
	return exitOK
}

// known returns the partitions cp knows: those of its committed offsets and
// of its last planned batch.
func known(cp *checkpoint.Store) map[string]bool {
	out := map[string]bool{}
	for p := range cp.Committed() {
		out[p] = true
	}
	if e, ok, _ := cp.Last(); ok {
		for p := range e.Until {
			out[p] = true
		}
	}
	return out
}

// selectTask narrows us, a pipeline's units, to task (--task K); "" keeps
// them all.
func selectTask(us []*config.Pipeline, task string) ([]*config.Pipeline, error) {
	if task == "" {
		return us, nil
	}
	k, err := strconv.Atoi(task)
	if err != nil || len(us) == 0 || k < 0 || k >= us[0].Tasks || us[0].Tasks <= 1 {
		if len(us) > 0 && us[0].Tasks > 1 {
			return nil, fmt.Errorf("--task %q: pipeline %q runs as tasks 0 to %d", task, us[0].Group, us[0].Tasks-1)
		}
		if len(us) > 0 {
			return nil, fmt.Errorf("--task %q: pipeline %q runs as one task (parallelism 1); leave --task out", task, us[0].Group)
		}
		return nil, errors.New("--task: no pipeline")
	}
	for _, u := range us {
		if u.Task == k {
			return []*config.Pipeline{u}, nil
		}
	}
	return nil, fmt.Errorf("--task %d: --pipeline names one task already", k)
}
