package seq_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

// model is the simplest list that obeys the contract: the items held, the
// numbers released, and the next number to release.
type model struct {
	expected seq.Number
	held     map[seq.Number]int
	released map[seq.Number]bool
}

func (m *model) put(n seq.Number, v int) error {
	if _, ok := m.held[n]; ok || m.released[n] {
		return seq.ErrDuplicate
	}
	if m.expected.Distance(n) >= seq.MaxAhead {
		return seq.ErrTooFar
	}
	m.held[n] = v
	return nil
}

func (m *model) pop() (int, bool) {
	v, ok := m.held[m.expected]
	if !ok {
		return 0, false
	}
	delete(m.held, m.expected)
	m.released[m.expected] = true
	m.expected++
	return v, true
}

// FuzzList reads ops as a program of Puts and Pops and checks every result
// of a List against the model. The low two bits of each op byte choose:
//
//	0: Pop.
//	1: Put at a small offset from Expected, op>>2 - 16 (-16 to 47), which
//	   reaches released numbers and numbers below the start.
//	2: Put from the next two bytes b: b&0xfff ahead (0 to 4095), which
//	   grows the ring, or with bit 15 of b set MaxAhead-2048 + b&0xfff
//	   ahead, either side of MaxAhead: the ring's widest and the first
//	   number refused as too far.
//	3: Put 2^31 or more ahead, from the next four bytes, where serial
//	   arithmetic no longer orders the number: a released one or too far.
//
// Values are the op's position plus one, so a swapped item shows.
func FuzzList(f *testing.F) {
	f.Add(uint32(0), []byte{0x41, 0x00, 0x45, 0x00})
	f.Add(uint32(0xffff_fffe), []byte{0x49, 0x45, 0x41, 0x00, 0x00, 0x00, 0x41})
	f.Add(uint32(7), []byte{0x02, 0x00, 0x10, 0x41, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00})
	f.Add(uint32(0x8000_0000), []byte{0x01, 0x41, 0x00, 0x3d, 0x03, 0xff, 0xff, 0xff, 0x7f})
	// MaxAhead-1 ahead, MaxAhead ahead, then Expected; after the Pop the
	// first item is MaxAhead-2 ahead and a new MaxAhead-1 fits beside it.
	f.Add(uint32(0xffff_f000), []byte{0x02, 0xff, 0x87, 0x02, 0x00, 0x88, 0x41, 0x00, 0x02, 0xfe, 0x87, 0x02, 0xff, 0x87, 0x02, 0x00, 0x88})

	f.Fuzz(func(t *testing.T, start uint32, ops []byte) {
		l := seq.NewList[int](seq.Number(start))
		m := &model{
			expected: seq.Number(start),
			held:     make(map[seq.Number]int),
			released: make(map[seq.Number]bool),
		}
		for i := 0; i < len(ops); i++ {
			op := ops[i]
			if op&3 == 0 {
				got, gotOK := l.Pop()
				want, wantOK := m.pop()
				if got != want || gotOK != wantOK {
					t.Fatalf("op %d: Pop = %d, %v; model says %d, %v", i, got, gotOK, want, wantOK)
				}
			} else {
				var ahead uint32
				switch op & 3 {
				case 1:
					ahead = uint32(int32(op>>2) - 16)
				case 2:
					var b [2]byte
					i += copy(b[:], ops[i+1:])
					u := binary.LittleEndian.Uint16(b[:])
					ahead = uint32(u & 0xfff)
					if u&0x8000 != 0 {
						ahead += seq.MaxAhead - 2048
					}
				case 3:
					var b [4]byte
					i += copy(b[:], ops[i+1:])
					ahead = 1<<31 | binary.LittleEndian.Uint32(b[:])
				}
				n := m.expected + seq.Number(ahead)
				v := i + 1
				got := l.Put(n, v)
				want := m.put(n, v)
				if !errors.Is(got, want) {
					t.Fatalf("op %d: Put(%d) with Expected %d = %v; model says %v", i, n, m.expected, got, want)
				}
			}
			if l.Expected() != m.expected || l.Len() != len(m.held) {
				t.Fatalf("op %d: Expected %d Len %d; model has %d and %d",
					i, l.Expected(), l.Len(), m.expected, len(m.held))
			}
		}
	})
}
