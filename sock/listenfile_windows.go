package sock

import (
	"fmt"
	"os"
)

// ListenFile is not offered on Windows: a socket crosses processes there
// through WSADuplicateSocket's protocol information, not an inherited file
// (docs/handoff.md).
func ListenFile(env *Env, f *os.File, h Handler, o ListenOptions) (*Listener, error) {
	return nil, fmt.Errorf("%w: ListenFile", ErrNotSupported)
}

// File is not offered on Windows; see ListenFile.
func (ln *Listener) File() (*os.File, error) {
	return nil, fmt.Errorf("%w: Listener.File", ErrNotSupported)
}
