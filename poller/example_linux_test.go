package poller_test

import (
	"fmt"

	"github.com/ioreactor/reactor/poller"
	"golang.org/x/sys/unix"
)

func Example() {
	p, err := poller.New()
	if err != nil {
		panic(err)
	}
	defer p.Close()

	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		panic(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])

	// The token is the caller's key back to the owner of the descriptor.
	const token = 42
	if err := p.Add(fds[0], token, poller.Readable); err != nil {
		panic(err)
	}
	unix.Write(fds[1], []byte("hello"))

	events := make([]poller.Event, 8)
	n, err := p.Wait(events, -1)
	if err != nil {
		panic(err)
	}
	for _, ev := range events[:n] {
		fmt.Println(ev.Token, ev.Flags&poller.In != 0)
	}
	// Output: 42 true
}

func ExamplePoller_Wake() {
	p, err := poller.New()
	if err != nil {
		panic(err)
	}
	defer p.Close()

	// Another goroutine posts work, then wakes the waiter. Wakes coalesce.
	go func() {
		p.Wake()
		p.Wake()
	}()

	n, err := p.Wait(make([]poller.Event, 8), -1)
	fmt.Println(n, err)
	// Output: 0 <nil>
}
