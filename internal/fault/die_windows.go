package fault

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// killSelf terminates this process with exit status DieExitCode. A process
// that terminates itself does not come back from TerminateProcess; should it
// fail, the process exits with the same status through os.Exit, which also
// runs no deferred function.
func killSelf() {
	err := windows.TerminateProcess(windows.CurrentProcess(), DieExitCode)
	fmt.Fprintf(os.Stderr, "connectd fault point: TerminateProcess: %v; exiting\n", err)
	os.Exit(DieExitCode)
}
