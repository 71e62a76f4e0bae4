package procfd

import (
	"os"
	"strconv"
)

// Count returns how many descriptors the process has open: the entries
// of /proc/self/fd (proc(5)). The directory's own descriptor, open while
// it is listed, is counted too, alike in every count.
func Count() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// List names what each open descriptor points at, for a leak report.
func List() []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+"->"+target)
	}
	return out
}
