package seq

import "errors"

// Errors returned by [List.Put]. Match them with errors.Is.
var (
	// ErrDuplicate reports a number that the list holds already or has
	// already released: the same operation completed twice.
	ErrDuplicate = errors.New("seq: duplicate sequence number")

	// ErrTooFar reports a number that is neither held nor released and is
	// [MaxAhead] or more ahead of the expected one. No connection has that
	// many operations in flight, so it means a bug in the caller: most
	// likely the number did not come from the generator paired with this
	// list. The list refuses it rather than grow its memory to match.
	ErrTooFar = errors.New("seq: sequence number too far ahead")
)
