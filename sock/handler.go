package sock

import (
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// Handler receives a connection's completions. All methods run on an I/O
// thread, one at a time per connection, and must not block.
type Handler interface {
	// OnOpen is the first callback of a connection: after accept, or after
	// an outbound connect succeeded. Issue the first reads here.
	OnOpen(c *Conn)
	// OnRead completes one Read, in the order the reads were issued. When
	// err is nil, b holds at least one byte and belongs to the handler,
	// which must Release it or hand it to WriteBuffer. At end of stream b
	// is nil and err is io.EOF; a connection is not closed by EOF alone
	// (the peer may still read what we write: a half-close).
	OnRead(c *Conn, b *pool.Buffer, err error)
	// OnClose is the last callback, exactly once per connection, including
	// an outbound connect that failed (then err is a *DialError). err is
	// nil after Close or Abort, otherwise the cause.
	OnClose(c *Conn, err error)
}

// WriteHandler is implemented by handlers that want write completions.
// Without it, writes complete silently, which saves a dispatch per write.
type WriteHandler interface {
	// OnWrite completes the write stamped s once the kernel has taken all
	// n bytes of it, or with err when the connection closed first (n then
	// counts the bytes the kernel did take). Completions arrive in the
	// order the writes were accepted.
	OnWrite(c *Conn, s seq.Number, n int, err error)
}
