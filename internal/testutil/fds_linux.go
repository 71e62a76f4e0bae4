package testutil

import (
	"os"
	"strconv"
)

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// listFDs names what each open descriptor points at, for a leak report.
func listFDs() []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if _, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, e.Name()+"->"+target)
		}
	}
	return out
}

// FDs counts the process's open descriptors.
func FDs() int { return countFDs() }
