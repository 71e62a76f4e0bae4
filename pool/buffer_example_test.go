package pool_test

import (
	"fmt"
	"strings"

	"github.com/ioreactor/reactor/pool"
)

func ExampleBuffers() {
	p := pool.NewBuffers(4096)

	// A reader fills the free tail, then commits what it wrote.
	b := p.Get()
	n := copy(b.Space(), "GET / HTTP/1.1\r\n") // stands in for a read(2)
	b.Commit(n)
	fmt.Printf("%q\n", b.Bytes())

	st := p.Stats()
	fmt.Println("in use:", st.InUse, "allocated:", st.Allocated)

	b.Release()
	st = p.Stats()
	fmt.Println("in use:", st.InUse, "allocated:", st.Allocated)
	// Output:
	// "GET / HTTP/1.1\r\n"
	// in use: 1 allocated: 1
	// in use: 0 allocated: 1
}

func ExampleChainFrom() {
	p := pool.NewBuffers(512)
	payload := []byte(strings.Repeat("x", 1200))

	c := pool.ChainFrom(p, payload)
	for b := c; b != nil; b = b.Next() {
		fmt.Println(b.Len()) // a writer would hand each Bytes() to write(2)
	}
	fmt.Println("total:", c.ChainLen())
	c.Release() // returns all three buffers
	fmt.Println("in use:", p.Stats().InUse)
	// Output:
	// 512
	// 512
	// 176
	// total: 1200
	// in use: 0
}
