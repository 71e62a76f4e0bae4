package sock

// The filter chain: ordered layers between a connection's socket and its
// handler that see inbound data, outbound writes, shutdown, close and
// timer events. docs/filters.md describes the model; this file is the
// machinery, tls.go and timeout.go are the built-in filters.
//
// Threads and locks. Inbound calls (Open, Read, EOF, Timer, Closed) run
// inside the connection's delivery, so they never overlap each other or
// the handler's callbacks. Outbound calls (Write, CloseWrite, Close) run
// on the writer's goroutine under chain.wmu, so a write passes the whole
// chain before the next one starts: what one Write hands the top leaves
// the bottom as one contiguous run. Lock order: chain.wmu, then the TLS
// pipe's mutex, then Conn.wmu, then Conn.dmu.

import (
	"crypto/tls"
	"io"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// Filter is one layer of a connection's filter chain. Inbound methods
// receive what the layer below passed up and pass on what the layer
// above should see; outbound methods do the reverse. Embed PassFilter to
// pass everything through and override only what the filter changes.
//
// Buffers handed to a filter are its own: it passes them on, keeps them,
// or releases them. Nothing else releases them.
type Filter interface {
	// Open: the layer below is open. Call l.PassOpen when this layer is
	// ready for the one above (TLS: after its handshake).
	Open(l *Layer)
	// Read: bytes from below.
	Read(l *Layer, b *pool.Buffer)
	// EOF: the peer shut its sending side; no Read follows.
	EOF(l *Layer)
	// Timer: the timer armed with l.ArmTimer fired.
	Timer(l *Layer)
	// Write: one write from above, to pass down with l.PassWrite as one
	// write (or several, within this call). The filter owns owned in
	// every case and must not keep bufs past the call.
	Write(l *Layer, bufs [][]byte, owned *pool.Buffer) error
	// CloseWrite: shut the sending side once queued writes are out.
	CloseWrite(l *Layer) error
	// Close: a graceful close from above.
	Close(l *Layer)
	// Closed is the last call: the connection is closed, err is why (nil
	// for a close asked for). The timer is already stopped; release what
	// the filter holds.
	Closed(l *Layer, err error)
}

// Interrupter is implemented by filters that wait on other goroutines
// (TLS waits for its handshake). Interrupt is called once, from any
// goroutine, as soon as the connection starts closing, so that the work
// it waits for ends now instead of at its own timeout.
type Interrupter interface {
	Interrupt(l *Layer)
}

// PassFilter passes everything through unchanged.
type PassFilter struct{}

func (PassFilter) Open(l *Layer)                 { l.PassOpen() }
func (PassFilter) Read(l *Layer, b *pool.Buffer) { l.PassRead(b) }
func (PassFilter) EOF(l *Layer)                  { l.PassEOF() }
func (PassFilter) Timer(*Layer)                  {}
func (PassFilter) CloseWrite(l *Layer) error     { return l.PassCloseWrite() }
func (PassFilter) Close(l *Layer)                { l.PassClose() }
func (PassFilter) Closed(*Layer, error)          {}
func (PassFilter) Write(l *Layer, bufs [][]byte, owned *pool.Buffer) error {
	return l.PassWrite(bufs, owned)
}

// Layer is a filter's place in its chain: the calls that pass events on
// and the connection's services.
type Layer struct {
	ch    *chain
	i     int // 0 is the top, next to the handler
	f     Filter
	timer pool.Timer
}

// Conn is the connection the chain belongs to.
func (l *Layer) Conn() *Conn { return l.ch.c }

// Buffers is the engine's buffer pool.
func (l *Layer) Buffers() *pool.Buffers { return l.ch.c.env.Buffers }

func (l *Layer) above() *Layer { return &l.ch.layers[l.i-1] }
func (l *Layer) below() *Layer { return &l.ch.layers[l.i+1] }
func (l *Layer) bottom() bool  { return l.i == len(l.ch.layers)-1 }

// PassOpen tells the layer above that this one is open. Inbound only.
func (l *Layer) PassOpen() {
	if l.i == 0 {
		l.ch.upOpen()
		return
	}
	a := l.above()
	a.f.Open(a)
}

// PassRead hands b to the layer above. Inbound only.
func (l *Layer) PassRead(b *pool.Buffer) {
	if l.i == 0 {
		l.ch.up(readDone{b: b})
		return
	}
	a := l.above()
	a.f.Read(a, b)
}

// PassEOF tells the layer above that no more bytes come. Inbound only.
func (l *Layer) PassEOF() {
	if l.i == 0 {
		l.ch.up(readDone{eof: true})
		return
	}
	a := l.above()
	a.f.EOF(a)
}

// PassWrite hands one write to the layer below; at the bottom it is
// queued on the socket as one run. It takes ownership of owned.
func (l *Layer) PassWrite(bufs [][]byte, owned *pool.Buffer) error {
	if !l.bottom() {
		b := l.below()
		return b.f.Write(b, bufs, owned)
	}
	return l.ch.writeBottom(bufs, owned)
}

// PassCloseWrite passes a CloseWrite down.
func (l *Layer) PassCloseWrite() error {
	if !l.bottom() {
		b := l.below()
		return b.f.CloseWrite(b)
	}
	return l.ch.c.closeWriteRaw()
}

// PassClose passes a graceful close down.
func (l *Layer) PassClose() {
	if !l.bottom() {
		b := l.below()
		b.f.Close(b)
		return
	}
	l.ch.closeErr = l.ch.c.closeRaw()
}

// Fail closes the connection because of err; the handler's OnClose gets
// it. Queued writes are dropped.
func (l *Layer) Fail(err error) { l.ch.c.closeWith(err, false) }

// FailAfterFlush closes the connection because of err once what is
// queued below this layer has gone out (an alert telling the peer why),
// within the linger bound; the handler's OnClose gets err.
func (l *Layer) FailAfterFlush(err error) { l.ch.c.closeAfterFlush(err) }

// HoldReads stops the socket's reads until ResumeReads: for a filter that
// holds bytes of its own it cannot use yet (a TLS handshake queued for a
// worker), so that a peer that floods it backs up in the kernel instead.
// A read already issued still completes.
func (l *Layer) HoldReads() {
	ch := l.ch
	ch.c.dmu.Lock()
	ch.held = true
	ch.c.dmu.Unlock()
}

// ResumeReads lets the socket's reads go on after HoldReads. It may be
// called from any goroutine.
func (l *Layer) ResumeReads() {
	ch := l.ch
	ch.c.dmu.Lock()
	ch.held = false
	ch.c.dmu.Unlock()
	ch.readMore()
}

// ArmTimer (re)arms the layer's timer: Timer runs after d, inside the
// connection's delivery. It never runs once the connection has closed.
func (l *Layer) ArmTimer(d time.Duration) { l.ch.c.loop.ArmTimer(&l.timer, d) }

// StopTimer disarms the layer's timer.
func (l *Layer) StopTimer() { l.ch.c.loop.StopTimer(&l.timer) }

// chain is a connection's filter chain. It stands in for the user's
// handler below (the socket calls it) and for the socket above (the
// connection's public methods route to it).
type chain struct {
	c       *Conn
	user    Handler
	layers  []Layer
	onWrite bool // user is a WriteHandler
	onFlow  bool // user is a FlowHandler

	// Inbound state, guarded by c.dmu; filters run only inside delivery.
	upq     fifo[readDone] // what the top passed up, for the user's reads
	want    int32          // the user's reads not yet completed
	fired   uint64         // layers whose timers fired, by bit
	openDue bool           // the top is open: OnOpen is due
	userUp  bool           // the user's OnOpen was delivered
	eof     bool           // end of stream is queued or delivered
	rawOut  bool           // a read is outstanding on the socket
	held    bool           // a filter holds the socket's reads (Layer.HoldReads)

	// Outbound, guarded by wmu: the top's write stamps and the write
	// passing through the chain now.
	wmu      lock.Mutex[chainWmu]
	wgen     seq.Generator
	passing  bool
	passRaw  bool       // the pass made a socket write
	passLast seq.Number // its stamp
	closeErr error      // what the socket's Close returned to a PassClose

	// Write completions for a WriteHandler, guarded by c.dmu: the top's
	// writes in order, each waiting for the last socket write its pass
	// made; done holds those ready for the user.
	pend fifo[chainWrite]
	done fifo[writeDone]
	// The socket's last write completion: its stamp and error.
	rawDone seq.Number
	rawErr  error
	rawAny  bool
}

// chainWmu is the lock class of chain.wmu (internal/lock).
type chainWmu struct{}

type chainWrite struct {
	top, raw seq.Number
	hasRaw   bool
	n        int
}

// ConnOptions are what listeners and connectors give each of their
// connections: a filter chain and a write limit.
type ConnOptions struct {
	// TLS makes the connection a TLS server (Listen) or client (Dial) on
	// crypto/tls. Listen and Dial refuse a configuration whose
	// certificate cannot work (see CheckTLSConfig). A client's empty
	// ServerName is taken from the dialled host.
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake, from the connection's open
	// (waiting for the peer and for a handshake worker included); 0 means
	// 10 s.
	HandshakeTimeout time.Duration
	// ReadTimeout closes a connection (OnClose gets ErrReadTimeout) on
	// which no bytes arrived for this long; each arrival re-arms it. 0
	// means none. It sits above TLS, so it counts decrypted bytes, and it
	// starts at OnOpen.
	ReadTimeout time.Duration
	// OnReadTimeout, if set, decides instead: it runs inside the
	// connection's delivery and returns true to keep the connection (the
	// timer starts again) or false to close it with ErrReadTimeout.
	OnReadTimeout func(c *Conn) bool
	// Filters adds filters of the user's, each made anew for every
	// connection: Filters[0] is the top, next to the handler. They sit
	// above the read timeout and TLS.
	Filters []func() Filter
	// WriteLimit bounds the bytes queued for writing (see
	// DefaultWriteLimit); 0 means the engine's default, < 0 none.
	WriteLimit int64
	// SendBuffer and ReceiveBuffer set the socket's SO_SNDBUF and
	// SO_RCVBUF in bytes (the kernel may round or double them); 0 leaves
	// the kernel's default and its autotuning.
	SendBuffer, ReceiveBuffer int
	// KeepAlive configures TCP keep-alive probes, which drop a connection
	// whose peer vanished without a FIN or RST; the zero value turns them
	// on with Go's net defaults (15 s idle, then 9 probes 15 s apart).
	// Unix-domain connections have none.
	KeepAlive KeepAlive
	// WriteTimeout closes a connection (OnClose gets ErrWriteTimeout)
	// whose queued writes made no progress for this long: a peer that
	// stopped reading cannot hold the connection, and up to its write
	// limit of queued bytes, for ever. Progress is bytes the kernel took
	// from the queue; a slow reader that keeps reading is not cut off. It
	// runs during a graceful close too, beside the linger bound. 0 means
	// none. See docs/keepalive.md.
	WriteTimeout time.Duration
	// UserTimeout drops a TCP connection whose sent bytes stay
	// unacknowledged this long (TCP_USER_TIMEOUT; Windows: TCP_MAXRT, in
	// whole seconds); 0 leaves the kernel's retransmission limit, about
	// 15 minutes on Linux. See keepalive.go.
	UserTimeout time.Duration
}

// filtered reports whether o asks for a chain.
func (o *ConnOptions) filtered() bool {
	return o.TLS != nil || o.ReadTimeout > 0 || len(o.Filters) > 0
}

// handler returns what the socket should call: h itself, or a new chain
// over h built from o.
func (o *ConnOptions) handler(h Handler, server bool, host string) Handler {
	if !o.filtered() {
		return h
	}
	ch := &chain{user: h}
	_, ch.onWrite = h.(WriteHandler)
	_, ch.onFlow = h.(FlowHandler)
	var fs []Filter
	for _, mk := range o.Filters {
		fs = append(fs, mk())
	}
	if o.ReadTimeout > 0 {
		fs = append(fs, &readTimeout{d: o.ReadTimeout, decide: o.OnReadTimeout})
	}
	if o.TLS != nil {
		fs = append(fs, newTLSFilter(o.TLS, server, host, o.HandshakeTimeout))
	}
	ch.layers = make([]Layer, len(fs))
	for i, f := range fs {
		l := &ch.layers[i]
		l.ch, l.i, l.f = ch, i, f
		l.timer.Init(func() { ch.timerFired(i) })
	}
	return ch
}

// attach binds the chain to its connection (newConn).
func (ch *chain) attach(c *Conn) {
	ch.c = c
	c.onWrite = ch.onWrite
	c.onFlow = ch.onFlow
	ch.wgen = seq.NewGenerator(c.env.WriteSeqStart)
}

// filters returns the connection's chain, or nil.
func (c *Conn) filters() *chain {
	ch, _ := c.h.(*chain)
	return ch
}

func (ch *chain) bottomLayer() *Layer { return &ch.layers[len(ch.layers)-1] }
func (ch *chain) topLayer() *Layer    { return &ch.layers[0] }

// The socket's callbacks, inside delivery.

func (ch *chain) OnOpen(*Conn) {
	b := ch.bottomLayer()
	ch.guard(func() { b.f.Open(b) })
	ch.readMore()
}

func (ch *chain) OnRead(_ *Conn, buf *pool.Buffer, err error) {
	b := ch.bottomLayer()
	ch.c.dmu.Lock()
	ch.rawOut = false
	ch.c.dmu.Unlock()
	if err == io.EOF {
		ch.guard(func() { b.f.EOF(b) })
	} else {
		ch.guard(func() { b.f.Read(b, buf) })
	}
	ch.readMore()
}

func (ch *chain) OnWrite(_ *Conn, s seq.Number, _ int, err error) {
	c := ch.c
	c.dmu.Lock()
	// The socket's completion can come before the writer that made the
	// write has recorded it (an inline write completes at once), so the
	// last completion is remembered for the record to find.
	ch.rawDone, ch.rawErr, ch.rawAny = s, err, true
	ch.settleLocked()
	c.dmu.Unlock()
}

func (ch *chain) OnWriteQueue(c *Conn, high bool) {
	ch.user.(FlowHandler).OnWriteQueue(c, high)
}

func (ch *chain) OnClose(c *Conn, err error) {
	c.dmu.Lock()
	for !ch.upq.empty() {
		d := ch.upq.pop()
		d.release()
	}
	up := ch.userUp
	ch.done = fifo[writeDone]{}
	ch.pend = fifo[chainWrite]{}
	c.dmu.Unlock()
	for i := len(ch.layers) - 1; i >= 0; i-- {
		l := &ch.layers[i]
		c.loop.StopTimer(&l.timer)
		ch.guard(func() { l.f.Closed(l, err) })
	}
	if up {
		ch.user.OnClose(c, err)
		return
	}
	if addr := c.dialAddr(); addr != "" {
		// An outbound connection that never opened for its user (its TLS
		// handshake failed) reports a failed dial, as a refused connect
		// does.
		if _, ok := err.(*DialError); !ok {
			if err == nil {
				err = ErrClosed
			}
			err = &DialError{Addr: addr, Err: err}
		}
		ch.user.OnClose(c, err)
	}
}

// guard runs a filter call and turns a panic into the connection's close
// reason, as a panicking callback's.
func (ch *chain) guard(f func()) {
	defer ch.c.recoverCallback()
	f()
}

// readMore keeps one read outstanding on the socket while the top has
// nothing waiting for the user: reading runs one buffer ahead of the
// user's reads and no further, and a filter that needs bytes of its own
// (a handshake) gets them because it passes nothing up meanwhile.
func (ch *chain) readMore() {
	c := ch.c
	c.dmu.Lock()
	if ch.rawOut || ch.held || ch.eof || !ch.upq.empty() || c.life.closed() {
		c.dmu.Unlock()
		return
	}
	ch.rawOut = true
	c.dmu.Unlock()
	if err := c.readRaw(); err != nil {
		c.dmu.Lock()
		ch.rawOut = false
		c.dmu.Unlock()
	}
}

// upOpen marks the top open: delivery calls the user's OnOpen next.
func (ch *chain) upOpen() {
	ch.c.dmu.Lock()
	ch.openDue = true
	ch.c.dmu.Unlock()
}

// up queues what the top passed up for the user's reads.
func (ch *chain) up(d readDone) {
	c := ch.c
	c.dmu.Lock()
	if ch.eof {
		c.dmu.Unlock()
		d.release()
		return
	}
	ch.eof = d.eof
	ch.upq.push(d)
	c.dmu.Unlock()
}

// timerFired runs on the loop when a layer's timer fires; the filter's
// Timer runs inside delivery.
func (ch *chain) timerFired(i int) {
	c := ch.c
	if c.life.closed() {
		return
	}
	c.dmu.Lock()
	ch.fired |= 1 << i
	c.dmu.Unlock()
	c.schedule(schedDeliver)
}

// readyLocked reports whether delivery has chain work to do. Called with
// c.dmu held.
func (ch *chain) readyLocked() bool {
	return ch.openDue || ch.fired != 0 || !ch.done.empty() ||
		ch.want > 0 && !ch.upq.empty() && ch.userUp
}

// stepLocked does one piece of chain work, called by delivery with c.dmu
// held; it returns with c.dmu released.
func (ch *chain) stepLocked() {
	c := ch.c
	switch {
	case ch.openDue:
		ch.openDue = false
		ch.userUp = true
		c.dmu.Unlock()
		if !c.life.closed() {
			ch.callUser(func() { ch.user.OnOpen(c) })
		}
	case ch.fired != 0:
		fired := ch.fired
		ch.fired = 0
		c.dmu.Unlock()
		for i := range ch.layers {
			if fired&(1<<i) != 0 && !c.life.closed() {
				l := &ch.layers[i]
				ch.guard(func() { l.f.Timer(l) })
			}
		}
	case !ch.done.empty():
		d := ch.done.pop()
		c.dmu.Unlock()
		ch.callUser(func() { ch.user.(WriteHandler).OnWrite(c, d.s, d.n, d.err) })
	default:
		d := ch.upq.pop()
		ch.want--
		c.dmu.Unlock()
		if c.life.closed() {
			d.release()
			return
		}
		var err error
		if d.eof {
			err = io.EOF
		}
		ch.callUser(func() { ch.user.OnRead(c, d.b, err) })
	}
	ch.readMore()
}

func (ch *chain) callUser(f func()) {
	defer ch.c.recoverCallback()
	f()
}

// The connection's public methods, routed here when it has a chain.

// read issues one of the user's reads: it completes with the next thing
// the top passed up.
func (ch *chain) read() error {
	c := ch.c
	if !c.life.incref() {
		return ErrClosed
	}
	defer c.decref()
	c.dmu.Lock()
	if int(ch.want) >= c.env.maxReads() {
		c.dmu.Unlock()
		return ErrTooManyReads
	}
	ch.want++
	ready := ch.readyLocked()
	c.dmu.Unlock()
	if ready {
		c.schedule(schedDeliver)
	}
	return nil
}

// write passes one write through the chain, top to bottom, under wmu.
func (ch *chain) write(req *writeReq) (seq.Number, error) {
	c := ch.c
	owned := req.owned
	req.owned = nil
	n := req.left
	defer req.free()
	if !c.life.incref() {
		releaseChain(owned)
		return 0, ErrClosed
	}
	defer c.decref()
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	c.wmu.Lock()
	err := error(nil)
	switch {
	case c.wshut:
		err = ErrClosed
	case !ch.isUp():
		err = ErrNotConnected
	case !c.roomLocked(n):
		err = &WriteLimitError{Queued: c.wq.queuedBytes(), Write: n, Limit: c.writeLimit()}
	}
	c.wmu.Unlock()
	if err != nil {
		releaseChain(owned)
		return 0, err
	}
	s := ch.wgen.Next()
	ch.passing, ch.passRaw = true, false
	top := ch.topLayer()
	err = top.f.Write(top, req.pending(), owned)
	ch.passing = false
	if err != nil {
		return 0, err
	}
	if ch.onWrite {
		c.dmu.Lock()
		ch.pend.push(chainWrite{top: s, raw: ch.passLast, hasRaw: ch.passRaw, n: n})
		ch.settleLocked()
		c.dmu.Unlock()
		c.schedule(schedDeliver)
	}
	return s, nil
}

// isUp reports whether the user's OnOpen is done or due: writes are
// accepted from then on.
func (ch *chain) isUp() bool {
	ch.c.dmu.Lock()
	defer ch.c.dmu.Unlock()
	return ch.userUp || ch.openDue
}

// settleLocked completes, in order, the top's writes whose last socket
// write has completed, and those whose pass made none. Called with c.dmu
// held.
func (ch *chain) settleLocked() {
	for !ch.pend.empty() {
		w := ch.pend.front()
		if w.hasRaw && !(ch.rawAny && !ch.rawDone.Before(w.raw)) {
			return
		}
		ch.pend.pop()
		d := writeDone{s: w.top, n: w.n}
		if w.hasRaw && ch.rawDone == w.raw && ch.rawErr != nil {
			d.n, d.err = 0, ch.rawErr
		}
		ch.done.push(d)
	}
}

// writeBottom queues one write on the socket, as one run.
func (ch *chain) writeBottom(bufs [][]byte, owned *pool.Buffer) error {
	req := writeReqs.Get().(*writeReq)
	req.owned = owned
	for _, b := range bufs {
		if len(b) > 0 {
			req.bufs = append(req.bufs, b)
			req.left += len(b)
		}
	}
	s, err := ch.c.writeRaw(req, true)
	if err == nil && ch.passing {
		ch.passRaw, ch.passLast = true, s
	}
	return err
}

// closeWrite and close pass the user's shutdown and close down the chain.
func (ch *chain) closeWrite() error {
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	top := ch.topLayer()
	return top.f.CloseWrite(top)
}

func (ch *chain) close() error {
	c := ch.c
	if !c.life.incref() {
		return ErrClosed
	}
	defer c.decref()
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	ch.closeErr = nil
	top := ch.topLayer()
	top.f.Close(top)
	return ch.closeErr
}

// interrupt tells the filters that wait on other goroutines that the
// connection is closing (closeWith, any goroutine).
func (ch *chain) interrupt() {
	for i := range ch.layers {
		l := &ch.layers[i]
		if f, ok := l.f.(Interrupter); ok {
			f.Interrupt(l)
		}
	}
}

func releaseChain(b *pool.Buffer) {
	if b != nil {
		b.Release()
	}
}
