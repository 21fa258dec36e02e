package pipeline

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

func TestGate(t *testing.T) {
	c := NewControl("p")
	c.state(StateRunning)
	if c.gate(nil, time.Hour) {
		t.Fatal("gate paused without a pause request")
	}
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(); !errors.Is(err, ErrAlreadyPaused) {
		t.Errorf("second Pause = %v, want ErrAlreadyPaused", err)
	}
	returned := make(chan bool)
	go func() { returned <- c.gate(nil, time.Hour) }()
	deadline := time.Now().Add(5 * time.Second)
	for c.Status().State != StatePaused {
		if time.Now().After(deadline) {
			t.Fatal("gate did not enter StatePaused")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-returned:
		t.Fatal("gate returned while paused")
	case <-time.After(50 * time.Millisecond):
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if <-returned || c.Status().State != StateRunning {
		t.Errorf("after Resume: state %s", c.Status().State)
	}
	if err := c.Resume(); !errors.Is(err, ErrNotPaused) {
		t.Errorf("Resume of a running pipeline = %v, want ErrNotPaused", err)
	}
	// A restart asked while paused lets the gate return; the pause stays.
	_ = c.Pause()
	if !c.gate(nil, time.Millisecond) || c.Status().State != StatePaused {
		t.Errorf("gate did not return true after its wait while paused")
	}
	go func() { returned <- c.gate(nil, time.Hour) }()
	for c.Status().State != StatePaused {
		time.Sleep(time.Millisecond)
	}
	_ = c.Restart()
	<-returned
	if !c.takeRestart() || !c.Status().PauseRequested {
		t.Errorf("restart while paused: restart taken / pause kept = false")
	}
	c.End(errors.New("boom"))
	if st := c.Status(); st.State != StateFailed || st.Error != "boom" {
		t.Errorf("after End: %+v", st)
	}
	if err := c.Resume(); !errors.Is(err, ErrEnded) {
		t.Errorf("Resume after End = %v, want ErrEnded", err)
	}
}

func TestLagOf(t *testing.T) {
	end := sdk.Offsets{"t/0": 100, "t/1": 50, "t/2": 7, "t/3": -1}
	committed := sdk.Offsets{"t/0": 40, "t/1": 60, "t/3": 5}
	want := map[string]int64{"t/0": 60, "t/1": 0, "t/2": 7}
	if got := lagOf(end, committed); !reflect.DeepEqual(got, want) {
		t.Errorf("lagOf = %v, want %v", got, want)
	}
	if lagOf(nil, committed) != nil {
		t.Errorf("lagOf without an end is not nil")
	}
}
