package poller

import "golang.org/x/sys/windows"

// FD is the handle type that Add, Modify and Remove take.
type FD = windows.Handle

// Poller will wrap an I/O completion port; a later change brings the IOCP
// backend. Until then New fails and every method returns ErrNotImplemented,
// so that nothing on Windows silently pretends to work.
type Poller struct{}

// New returns ErrNotImplemented.
func New() (*Poller, error) { return nil, ErrNotImplemented }

// Add returns ErrNotImplemented.
func (p *Poller) Add(fd FD, token uint64, interest Interest) error { return ErrNotImplemented }

// Modify returns ErrNotImplemented.
func (p *Poller) Modify(fd FD, token uint64, interest Interest) error { return ErrNotImplemented }

// Remove returns ErrNotImplemented.
func (p *Poller) Remove(fd FD) error { return ErrNotImplemented }

// Wait returns 0 and ErrNotImplemented.
func (p *Poller) Wait(events []Event, msec int) (int, error) { return 0, ErrNotImplemented }

// Wake returns ErrNotImplemented.
func (p *Poller) Wake() error { return ErrNotImplemented }

// WakeAll returns ErrNotImplemented.
func (p *Poller) WakeAll() error { return ErrNotImplemented }

// Close returns ErrNotImplemented.
func (p *Poller) Close() error { return ErrNotImplemented }

// RingStats is zero: there is no ring on Windows.
func (p *Poller) RingStats() RingStats { return RingStats{} }
