package plugin

import (
	"errors"
	"strings"

	"github.com/connectd/connectd/sdk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Fenced reports whether err holds a sink's refusal of a batch sent under a
// lease epoch older than one the sink already committed: an error that
// wraps sdk.ErrFenced, sent by the Go sdk as FAILED_PRECONDITION with that
// error's text. The host that sent the batch lost its lease.
func Fenced(err error) bool {
	var perr *Error
	if !errors.As(err, &perr) {
		return false
	}
	s, ok := status.FromError(perr.Err)
	return ok && s.Code() == codes.FailedPrecondition && strings.Contains(s.Message(), sdk.ErrFenced.Error())
}
