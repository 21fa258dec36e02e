package plugin

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestWrapClassifies: what a plugin answered decides whether the host may
// retry: INVALID_ARGUMENT is the user's configuration, a broken contract or a
// missing call is permanent, a dead or unreachable plugin is worth a restart.
func TestWrapClassifies(t *testing.T) {
	tests := []struct {
		code      codes.Code
		config    bool
		permanent bool
	}{
		{codes.InvalidArgument, true, true},
		{codes.Internal, false, true},
		{codes.Unimplemented, false, true},
		{codes.FailedPrecondition, false, true},
		{codes.Unavailable, false, false},
		{codes.Unknown, false, false},
		{codes.DeadlineExceeded, false, false},
		{codes.Canceled, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			err := wrap(`source "generator"`, "read", status.Error(tt.code, `unknown partition "gen/0"`))
			var cerr *ConfigError
			if got := errors.As(err, &cerr); got != tt.config {
				t.Fatalf("wrap(%s) = %T %v; a *ConfigError: %v, want %v", tt.code, err, err, got, tt.config)
			}
			if tt.config {
				if want := `source "generator": read: unknown partition "gen/0"`; cerr.Error() != want {
					t.Errorf("ConfigError %q, want %q", cerr.Error(), want)
				}
				return
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("wrap(%s) = %T, want an *Error", tt.code, err)
			}
			if perr.Permanent() != tt.permanent {
				t.Errorf("Permanent() = %v for %s, want %v", perr.Permanent(), tt.code, tt.permanent)
			}
		})
	}
	if err := openErr(`sink "file"`, status.Error(codes.InvalidArgument, `mode "upsert" needs key`)); err.Error() != `sink "file": mode "upsert" needs key` {
		t.Errorf("openErr's ConfigError says %q", err)
	}
}
