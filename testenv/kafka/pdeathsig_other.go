//go:build !linux

package main

// setPdeathsig does nothing outside Linux; watchParent's poll does the work.
func setPdeathsig() error { return nil }
