// Command echoserver serves the echo protocol on the engine, for driving
// from other processes (tests/stress -addr, load tools, netcat).
//
// Once it accepts connections it prints one line, "listening on ADDR", to
// standard output with the real address, so -addr 127.0.0.1:0 can be used
// by a script. On SIGINT or SIGTERM it shuts the engine down and prints
// its counters, one per line; it exits 1 if the shutdown left something
// behind, or if it could not start.
//
// With -tls-cert and -tls-key (PEM files, both or neither) it serves echo
// over TLS. The pair is checked at start (sock.LoadKeyPair): a key that
// does not match the certificate, or a certificate no peer would accept
// (expired, not yet valid, signed with MD5 or SHA-1, an RSA key under
// 1024 bits), makes it exit 1 with the reason. -handshake-timeout bounds
// each TLS handshake (0: the engine's default, 10 s). -read-timeout closes
// a connection on which nothing arrived for that long (0: never); under
// TLS it counts decrypted bytes. -write-timeout closes a connection
// whose echo made no progress for that long: a client that stopped
// reading (0: never). -udp also echoes datagrams, on the UDP
// port of the same number (each datagram goes back to its sender).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/sock"
)

// shutdownTimeout bounds the graceful close of the connections at exit.
const shutdownTimeout = 5 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:7007", "address to listen on (port 0 picks one), or unix:PATH for a Unix-domain socket (Linux)")
	threads := flag.Int("io-threads", 0, "I/O threads (0 = one per CPU)")
	bufSize := flag.Int("buffer-size", 16384, "size of the engine's pooled buffers in bytes")
	shared := flag.Bool("shared", false, "all I/O threads wait on one shared poller")
	reads := flag.Int("reads", 1, "reads outstanding per connection")
	readChain := flag.Int("read-chain", 4, "buffers one read may fill (readv) once a stream fills whole buffers")
	backendName := flag.String("backend", "auto", "auto (io_uring where allowed), epoll or uring")
	tlsCert := flag.String("tls-cert", "", "PEM `file` of the certificate chain: serve TLS (with -tls-key)")
	tlsKey := flag.String("tls-key", "", "PEM `file` of the private key of -tls-cert")
	handshakeTimeout := flag.Duration("handshake-timeout", 0, "bound on each TLS handshake (0 = the engine's default, 10s)")
	readTimeout := flag.Duration("read-timeout", 0, "close a connection on which nothing arrived for this long (0 = never)")
	writeTimeout := flag.Duration("write-timeout", 0, "close a connection whose echo made no progress for this long: a client that stopped reading (0 = never)")
	udp := flag.Bool("udp", false, "also echo datagrams on the UDP port of the same number")
	listenFD := flag.Int("listen-fd", -1, "serve on this inherited listening descriptor instead of -addr (Linux): 3 is the first that systemd or a predecessor passes")
	drain := flag.Duration("drain", 0, "on SIGINT/SIGTERM, stop accepting and wait up to this long for the open connections to close on their own before shutting down")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected arguments: %q", flag.Args())
	}
	if *threads < 0 || *bufSize <= 0 || *reads < 1 {
		fatalf("-io-threads must be ≥ 0, -buffer-size > 0 and -reads ≥ 1")
	}
	if *udp && *listenFD >= 0 {
		fatalf("-udp echoes on the UDP port of -addr's number: not with -listen-fd")
	}
	if *drain < 0 {
		fatalf("-drain must be ≥ 0")
	}
	if *udp && strings.HasPrefix(*addr, "unix:") {
		fatalf("-udp echoes on the UDP port of -addr's number: it needs an IP address, not %s", *addr)
	}
	for name, d := range map[string]time.Duration{"-handshake-timeout": *handshakeTimeout, "-read-timeout": *readTimeout, "-write-timeout": *writeTimeout} {
		if d < 0 {
			fatalf("%s must be ≥ 0", name)
		}
	}
	opts := reactor.ListenOptions{ConnOptions: reactor.ConnOptions{ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout}}
	switch {
	case *tlsCert != "" && *tlsKey != "":
		// Checked here, before anything starts, so that a pair no peer
		// would accept is refused with its reason rather than failing
		// every handshake.
		cert, err := sock.LoadKeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fatalf("%v", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		opts.HandshakeTimeout = *handshakeTimeout
	case *tlsCert != "" || *tlsKey != "":
		fatalf("-tls-cert and -tls-key go together: give both or neither")
	case *handshakeTimeout != 0:
		fatalf("-handshake-timeout needs TLS (-tls-cert and -tls-key)")
	}

	backend, err := reactor.ParseBackend(*backendName)
	if err != nil {
		fatalf("%v", err)
	}
	e, err := reactor.New(reactor.Config{
		IOThreads:    *threads,
		BufferSize:   *bufSize,
		SharedPoller: *shared,
		MaxReads:     *reads,
		ReadChain:    *readChain,
		Backend:      backend,
	})
	if err != nil {
		fatalf("starting the engine: %v", err)
	}
	// Catch the signals before announcing the address, so a script that
	// signals right after reading the line is not racing the handler.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var ln *reactor.Listener
	if *listenFD >= 0 {
		f := os.NewFile(uintptr(*listenFD), "listen-fd")
		ln, err = e.ListenFile(f, &echo.Handler{Reads: *reads}, opts)
		f.Close() // the engine holds its own duplicate
	} else {
		ln, err = e.Listen(*addr, &echo.Handler{Reads: *reads}, opts)
	}
	if err != nil {
		if serr := e.Shutdown(shutdownTimeout); serr != nil {
			fmt.Fprintf(os.Stderr, "echoserver: shutdown: %v\n", serr)
		}
		if *listenFD >= 0 {
			fatalf("serving descriptor %d: %v", *listenFD, err)
		}
		fatalf("listening on %s: %v", *addr, err)
	}
	if *udp {
		if _, err := e.ListenPacket(ln.Addr().String(), echo.Packet{}, reactor.PacketOptions{}); err != nil {
			if serr := e.Shutdown(shutdownTimeout); serr != nil {
				fmt.Fprintf(os.Stderr, "echoserver: shutdown: %v\n", serr)
			}
			fatalf("binding UDP %s: %v", ln.Addr(), err)
		}
	}
	where := ln.Addr().String()
	if ln.Path() != "" {
		where = "unix:" + ln.Path()
	}
	fmt.Printf("listening on %s\n", where)

	sig := <-sigs
	signal.Stop(sigs)
	if *drain > 0 {
		fmt.Fprintf(os.Stderr, "echoserver: %v: draining for up to %v\n", sig, *drain)
		if err := e.Drain(*drain); err != nil {
			fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		}
	}
	fmt.Fprintf(os.Stderr, "echoserver: %v: shutting down\n", sig)
	serr := e.Shutdown(shutdownTimeout)
	printStats(os.Stdout, e.Stats())
	if serr != nil {
		fmt.Fprintf(os.Stderr, "echoserver: shutdown: %v\n", serr)
		os.Exit(1)
	}
}

// printStats writes the engine's counters, one per line.
func printStats(w io.Writer, s reactor.Stats) {
	fmt.Fprintf(w, "backend:              %v\n", s.Backend)
	fmt.Fprintf(w, "connections total:    %d\n", s.ConnsTotal)
	fmt.Fprintf(w, "connections open:     %d\n", s.ConnsOpen)
	fmt.Fprintf(w, "accepts:              %d\n", s.Accepts)
	fmt.Fprintf(w, "accept back-offs:     %d\n", s.AcceptBackoff)
	fmt.Fprintf(w, "accept mode restored: %d\n", s.AcceptModeRestored)
	fmt.Fprintf(w, "bytes in:             %d\n", s.BytesIn)
	fmt.Fprintf(w, "bytes out:            %d\n", s.BytesOut)
	fmt.Fprintf(w, "callback panics:      %d\n", s.Panics)
	fmt.Fprintf(w, "close errors:         %d\n", s.CloseErrors)
	fmt.Fprintf(w, "tls handshakes:       %d (failed %d)\n", s.TLSHandshakes, s.TLSFailures)
	fmt.Fprintf(w, "read timeouts:        %d\n", s.ReadTimeouts)
	fmt.Fprintf(w, "write timeouts:       %d\n", s.WriteTimeouts)
	fmt.Fprintf(w, "datagrams:            %d in, %d out (too large %d, dropped %d, waited %d, receive errors %d)\n",
		s.DatagramsIn, s.DatagramsOut, s.DatagramsTruncated, s.DatagramsDropped, s.DatagramsQueued, s.DatagramErrors)
	fmt.Fprintf(w, "engine fds:           %d\n", s.FDs)
	fmt.Fprintf(w, "poller registrations: %d\n", s.Registrations)
	fmt.Fprintf(w, "buffer size:          %d\n", s.Buffers.Size)
	fmt.Fprintf(w, "buffers allocated:    %d\n", s.Buffers.Allocated)
	fmt.Fprintf(w, "buffers in use:       %d (lent to rings: %d, their spares: %d)\n", s.Buffers.InUse, s.RingBuffers, s.RingSpares)
	fmt.Fprintf(w, "ring enters:          %d (entries submitted %d, queue overflows %d, failed cancels %d)\n", s.Ring.Enters, s.Ring.Submitted, s.Ring.Overflows, s.Ring.Failed)
	fmt.Fprintf(w, "recv without buffer:  %d\n", s.RecvNoBuffers)
	fmt.Fprintf(w, "buffers peak:         %d\n", s.Buffers.Peak)
	fmt.Fprintf(w, "buffer gets:          %d\n", s.Buffers.Gets)
	fmt.Fprintf(w, "buffer releases:      %d\n", s.Buffers.Releases)
	for i, t := range s.Threads {
		fmt.Fprintf(w, "thread %d: loop %d, events %d, stale %d, tasks %d, timers %d, waits %d\n",
			i, t.Loop, t.Events, t.Stale, t.Tasks, t.Timers, t.Waits)
	}
	fmt.Fprintf(w, "goroutines:           %d\n", s.Goroutines)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "echoserver: "+format+"\n", args...)
	os.Exit(1)
}
