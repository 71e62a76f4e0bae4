package reactor_test

import (
	"fmt"
	"io"
	"net"

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
