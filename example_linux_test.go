package reactor_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ioreactor/reactor"
)

// A control socket: a Unix-domain listener whose file only its owner may
// connect to (UnixMode), and a drain before shutting down. A handler that
// must know who connected reads SO_PEERCRED through Conn.Control.
func Example_unixSocket() {
	dir, err := os.MkdirTemp("", "reactor-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "control.sock")

	e, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	defer e.Shutdown(time.Second)
	ln, err := e.Listen("unix:"+path, upper{}, reactor.ListenOptions{UnixMode: 0o600})
	if err != nil {
		panic(err)
	}
	st, _ := os.Stat(ln.Path())
	fmt.Println("mode", st.Mode().Perm())

	c, err := net.Dial("unix", path)
	if err != nil {
		panic(err)
	}
	c.Write([]byte("status"))
	c.(*net.UnixConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(reply))

	// Stop accepting, let the open connections finish, then shut down.
	if err := e.Drain(time.Second); err != nil {
		panic(err)
	}
	_, err = os.Stat(path)
	fmt.Println("file removed:", os.IsNotExist(err))
	// Output:
	// mode -rw-------
	// STATUS
	// file removed: true
}
