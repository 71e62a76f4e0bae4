package seq

// Generator hands out consecutive Numbers. Not safe for concurrent use: the
// owner calls it under its own issue lock. Zero value starts at 0.
type Generator struct {
	next Number
}

// NewGenerator returns a Generator whose first Number is start. A connection
// pairs it with a List made by NewList(start).
func NewGenerator(start Number) Generator { return Generator{next: start} }

// Next returns the current number, then advances, wrapping at 2^32.
func (g *Generator) Next() Number {
	n := g.next
	g.next++
	return n
}

// Peek returns the number Next will return, without advancing.
func (g *Generator) Peek() Number { return g.next }
