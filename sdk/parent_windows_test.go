package sdk

// watchHost watches the parent as dieWithParent does on Windows, calling die
// when it ends.
func watchHost(die func()) { waitParent(die) }
