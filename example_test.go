package reactor_test

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ioreactor/reactor"
)

// upper echoes what it reads in upper case.
type upper struct{}

func (upper) OnOpen(c *reactor.Conn) { c.Read() }

func (upper) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err != nil { // io.EOF: the client is done; flush, then close
		c.Close()
		return
	}
	p := b.Bytes()
	for i, ch := range p {
		if 'a' <= ch && ch <= 'z' {
			p[i] = ch - 'a' + 'A'
		}
	}
	c.WriteBuffer(b) // the engine releases b once the kernel took it
	c.Read()
}

func (upper) OnClose(c *reactor.Conn, err error) {}

func Example() {
	e, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	defer e.Shutdown(0)
	ln, err := e.Listen("127.0.0.1:0", upper{}, reactor.ListenOptions{})
	if err != nil {
		panic(err)
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	c.Write([]byte("hello, reactor"))
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(reply))
	// Output: HELLO, REACTOR
}

// lookup stands for a slow call (a database, a file): it must not run on
// an I/O thread.
func lookup(key string) string { return "value of " + key }

// kv answers each read with a lookup done on the blocking-work pool.
type kv struct{}

func (kv) OnOpen(c *reactor.Conn) { c.Read() }

func (kv) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err != nil {
		c.Close()
		return
	}
	key := string(b.Bytes())
	b.Release()
	reactor.Submit(c, func() string { return lookup(key) }, // on a worker
		func(c *reactor.Conn, v string) { // back on c's I/O side, in order
			c.Write([]byte(v))
			c.Read()
		})
}

func (kv) OnClose(c *reactor.Conn, err error) {}

func ExampleSubmit() {
	e, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	defer e.Shutdown(time.Second)
	ln, err := e.Listen("127.0.0.1:0", kv{}, reactor.ListenOptions{
		ConnOptions: reactor.ConnOptions{ReadTimeout: 5 * time.Second},
	})
	if err != nil {
		panic(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("answer"))
	reply := make([]byte, len("value of answer"))
	io.ReadFull(c, reply)
	fmt.Println(string(reply))
	// Output: value of answer
}
