// Package poison overwrites a batch's record memory once the plugin it was
// lent to has returned, so that a plugin that kept references to it past
// the call reads (and writes out) a message instead of another batch's
// records: the sdk does it in a plugin process run with Env=1, sdktest
// always, and the conformance suite sets Env=1 on every plugin it starts.
package poison

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Env names the environment variable that turns poisoning on in a plugin
// process: "1" on, "0" or unset off.
const Env = "CONNECTD_POISON"

// Pattern is what poisoned memory holds, repeated: it says what happened
// and what to do, wherever a kept value ends up (a file, a topic, a test's
// failure message), in 61 bytes, so that a short value holds all of it.
const Pattern = "connectd poison: record kept past Write; copy what you keep. "

// Enabled reports whether Env turns poisoning on in this process; a value
// other than "", "0" or "1" is an error that names it.
func Enabled() (bool, error) {
	switch v := os.Getenv(Env); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want 1 (poison a batch's memory after Write) or 0", Env, v)
	}
}

// Fill overwrites b with Pattern, repeated from its start.
func Fill(b []byte) {
	for n := 0; n < len(b); {
		n += copy(b[n:], Pattern)
	}
}

// In reports whether v holds poison: it contains the start of Pattern
// ("connectd poison"), or it is a value of 4 to 15 bytes that the start of
// Pattern begins with (a short key or value, poisoned from its start).
func In(v []byte) bool {
	const marker = "connectd poison"
	if len(v) >= 4 && len(v) < len(marker) {
		return strings.HasPrefix(Pattern, string(v))
	}
	return bytes.Contains(v, []byte(marker))
}
